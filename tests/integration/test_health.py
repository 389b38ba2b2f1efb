"""Health checks, the fail-open guard, leases and drain, end to end: real r53reg processes,
real TCP and HTTP backends on 127.0.0.0/8 addresses, the strict Route 53 emulator.

Usage: test_health.py BIN_DIR   (holds r53reg and r53emu)

Covers, end to end: backends registered with r53reg are checked; a stopped one
leaves the zone's served set for the _down set within fall x interval (+ one interval for the
first failing check, + commit slack) and comes back after the backend restarts (both times
measured and printed); a per-registration HTTP check takes out a backend whose port accepts but
whose /healthz answers 503; the fail-open guard keeps the share --max-down-share allows in DNS
and lets recoveries through; leases expire (a down backend's too, out of _down); drain moves a
backend to _draining, reports drained_at / no_new_traffic_after / drained, and re-registering
or deleting ends it; a restart of r53reg (on the emulator's zone, and on the embedded store's
state file) keeps served, down and draining backends where they were. The zone is read in the
emulator's own view (/_emu/zones/{id}). Prints 'N passed, M failed' last.

Backends listen on 127.0.3.x..127.0.9.x only; r53reg and the emulator on 127.0.0.1.
"""
import datetime
import http.client
import http.server
import json
import os
import random
import re
import socket
import sys
import tempfile
import threading
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'r53emu'))
sys.path.insert(0, HERE)
from emutest import Emu, Tally  # noqa: E402
import test_route53  # noqa: E402  (its Reg: one r53reg process on 127.0.0.1:0)

T = Tally()
NAME = 'app.example.com.'
KIND_OF_NAME = {NAME: 'served', '_down.' + NAME: 'down', '_draining.' + NAME: 'draining'}

# Short intervals so the suite is quick: a stopped backend is out after 2 failed checks.
INTERVAL_MS, TIMEOUT_MS, FALL, RISE = 200, 150, 2, 2
COMMIT_SLACK = 1.0  # seconds granted to the committer and the emulator on top of the checks
# The issue's own bound: fall (rise) checks, plus up to one interval before the first check
# after the change, plus one commit.
DOWN_BOUND = (FALL * INTERVAL_MS + INTERVAL_MS) / 1000 + COMMIT_SLACK
UP_BOUND = (RISE * INTERVAL_MS + INTERVAL_MS) / 1000 + COMMIT_SLACK
POLL = 0.02  # seconds between two reads of the zone while measuring


def check_flags(port, kind='tcp'):
    return ['--check', kind, '--check-port', str(port),
            '--check-interval-ms', str(INTERVAL_MS), '--check-timeout-ms', str(TIMEOUT_MS),
            '--check-fall', str(FALL), '--check-rise', str(RISE)]


# --- backends ----------------------------------------------------------------------------

class _Health(http.server.BaseHTTPRequestHandler):
    """One HTTP/1.0 exchange: the backend's status on its health path, 404 elsewhere."""
    timeout = 5

    def do_GET(self):
        b = self.server  # the Backend
        code = b.status if self.path == b.path else 404
        body = b'' if code in (204, 304) else b'ok\n' if code < 400 else b'unhealthy\n'
        self.send_response(code)
        self.send_header('Content-Type', 'text/plain')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        with b.lock:
            b.hits += 1

    def log_message(self, *args):
        pass


class Backend:
    """A listener on ip:port: 'tcp' accepts and closes, 'http' answers GET <path> with
    .status (200 unless changed) over http.server. stop() shuts the listening socket down, so
    connects are refused at once; start() listens again on the same address."""

    def __init__(self, ip, port, kind='tcp', path='/healthz'):
        self.ip, self.port, self.kind, self.path = ip, port, kind, path
        self.status = 200
        self.hits = 0
        self.lock = threading.Lock()
        self.sock = None
        self.start()

    def start(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((self.ip, self.port))
            s.listen(128)
        except OSError:
            s.close()
            raise
        self.sock = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()
        return time.monotonic()

    def _accept(self, s):
        while True:
            try:
                conn, peer = s.accept()
            except OSError:  # shut down by stop()
                return
            if self.kind == 'tcp':
                conn.close()
            else:
                threading.Thread(target=self._serve, args=(conn, peer), daemon=True).start()

    def _serve(self, conn, peer):
        try:
            _Health(conn, peer, self)
        except OSError:
            pass
        finally:
            conn.close()

    def stop(self):
        """Returns the monotonic time the socket stopped listening."""
        s, self.sock = self.sock, None
        if s is None:
            return time.monotonic()
        try:
            s.shutdown(socket.SHUT_RDWR)  # wakes accept() and stops listening
        except OSError:
            pass
        s.close()
        return time.monotonic()

    @property
    def running(self):
        return self.sock is not None


def backends(specs):
    """Backends for [(ip, kind), ...] sharing one port (the server's --check-port): a port
    the first address got from the kernel, retried if another address has it taken."""
    for _ in range(50):
        probe = socket.socket()
        probe.bind((specs[0][0], 0))
        port = probe.getsockname()[1]
        probe.close()
        made = []
        try:
            for ip, kind in specs:
                made.append(Backend(ip, port, kind))
            return port, made
        except OSError:
            for b in made:
                b.stop()
    raise RuntimeError('no common free port for ' + ', '.join(ip for ip, _ in specs))


def stop_all(bs):
    for b in bs:
        b.stop()


# --- r53reg, the zone, metrics -----------------------------------------------------------

def Reg(emu, *extra):
    return test_route53.Reg(emu, *extra)


def MemReg(state_file, *extra):
    """r53reg on its embedded store: test_route53.Reg with the provider flags overridden (the
    last flag wins; --zone-id and --aws-endpoint go unused)."""
    noemu = types.SimpleNamespace(akid='unused', secret='unused', endpoint='http://127.0.0.1:9')
    return test_route53.Reg(noemu, '--provider', 'memory', '--state-file', state_file, *extra)


def post(r, ip, body=None, suffix=''):
    """POST /backends/{ip}{suffix}, with a JSON body when given: (status, document)."""
    if body is None:
        return r.req('POST', '/backends/' + ip + suffix)
    conn = http.client.HTTPConnection('127.0.0.1', r.port, timeout=120)
    conn.request('POST', '/backends/' + ip + suffix, body=json.dumps(body).encode(),
                 headers={'Content-Type': 'application/json'})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    try:
        return resp.status, json.loads(data)
    except ValueError:
        return resp.status, None


def text(r, path):
    conn = http.client.HTTPConnection('127.0.0.1', r.port, timeout=30)
    conn.request('GET', path)
    resp = conn.getresponse()
    data = resp.read().decode()
    conn.close()
    return data


def metric(r, name, labels=''):
    """The value of one sample of /metrics (labels as written, e.g. 'result="ok"')."""
    pat = re.escape(name) + (r'\{' + re.escape(labels) + r'\}' if labels else '') + r' (\S+)$'
    for line in text(r, '/metrics').splitlines():
        m = re.match(pat, line)
        if m:
            return float(m.group(1))
    return None


def writes(r):
    """ChangeResourceRecordSets calls r made, whatever their outcome."""
    return sum(float(line.rsplit(' ', 1)[1]) for line in text(r, '/metrics').splitlines()
               if line.startswith('r53reg_route53_calls_total{call="change_rrsets"'))


def log_text(r):
    r.log.flush()
    with open(r.log.name, errors='replace') as f:
        return f.read()


def emu_sets(emu):
    """[(kind, set_identifier, type, weight, ttl, sorted values)] of our three names."""
    out = []
    for rs in emu.rrsets():
        kind = KIND_OF_NAME.get(rs['name'])
        if kind:
            out.append((kind, rs.get('set_identifier'), rs['type'], rs.get('weight'),
                        rs.get('ttl'), sorted(rs['values'])))
    return out


def emu_view(emu):
    """{ip: (kind, set_identifier)} in the emulator's zone; an IP in two places is listed
    under '!dup'."""
    out = {}
    for kind, sid, _, _, _, values in emu_sets(emu):
        for ip in values:
            if ip in out:
                out.setdefault('!dup', []).append(ip)
            out[ip] = (kind, sid)
    return out


def mem_view(r):
    """The same view from GET /buckets (the embedded store has no other window)."""
    out = {}
    doc = r.req('GET', '/buckets')[1]
    for b in doc['buckets']:
        for kind, key in (('served', 'values'), ('down', 'down'), ('draining', 'draining')):
            for ip in b[key]:
                out[ip] = (kind, b['set_identifier'])
    return out


def kinds(view, ips):
    return {ip: view.get(ip, (None,))[0] for ip in ips}


def check_zone_shape(emu, what):
    """Every served set weighs its value count; _down and _draining sets weigh 0; set
    identifiers are app.example.com_<bucket>; no IP is in two sets; TTLs agree."""
    sets = emu_sets(emu)
    for kind, sid, typ, weight, ttl, values in sets:
        want = len(values) if kind == 'served' else 0
        T.eq(weight, want, f'{what}: {kind} {sid}/{typ} weight')
        T.check(re.fullmatch(r'app\.example\.com_\d+', sid or ''), f'{what}: set id {sid}')
        T.check(values, f'{what}: {kind} {sid} is not empty')
    T.eq(len({ttl for _, _, _, _, ttl, _ in sets}), 1 if sets else 0, f'{what}: one TTL')
    T.eq(emu_view(emu).get('!dup'), None, f'{what}: no IP in two sets')


def wait_for(pred, timeout, step=POLL, since=None):
    """Seconds from since (default: now) until pred() held, or None after timeout."""
    t0 = time.monotonic() if since is None else since
    while True:
        if pred():
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            return None
        time.sleep(step)


def state(r, ip):
    st, doc = r.req('GET', '/backends/' + ip)
    return doc.get('state') if st == 200 and doc else st


def wait_states(r, want, timeout):
    """Wait until GET /backends/{ip} gives the wanted state for every ip of want."""
    return wait_for(lambda: all(state(r, ip) == s for ip, s in want.items()), timeout)


def parse_time(s):
    return datetime.datetime.strptime(s, '%Y-%m-%dT%H:%M:%S.%fZ').replace(
        tzinfo=datetime.timezone.utc).timestamp()


def fresh(emu):
    emu.reset()


MEASURED = {'down': [], 'up': []}


# --- the tests ---------------------------------------------------------------------------

def test_stop_and_restart(emu):
    """A stopped TCP backend leaves the served set for _down within the bound, and returns
    once it listens again; twice: from a bucket it shares (the served weight follows the
    count) and from a bucket it is alone in (the emptied served set is deleted)."""
    fresh(emu)
    ips = ['127.0.3.1', '127.0.3.2', '127.0.3.3']
    port, bs = backends([(ip, 'tcp') for ip in ips])
    r = Reg(emu, '--buckets', '2', '--bucketing', 'balanced', *check_flags(port))
    b0, b1 = 'app.example.com_0', 'app.example.com_1'
    all_served = sorted([('served', b0, 'A', 2, 60, [ips[0], ips[2]]),
                         ('served', b1, 'A', 1, 60, [ips[1]])])
    rounds = [
        (0, 'shared bucket', sorted([('served', b0, 'A', 1, 60, [ips[2]]),
                                     ('served', b1, 'A', 1, 60, [ips[1]]),
                                     ('down', b0, 'A', 0, 60, [ips[0]])])),
        (1, 'alone in its bucket', sorted([('served', b0, 'A', 2, 60, [ips[0], ips[2]]),
                                           ('down', b1, 'A', 0, 60, [ips[1]])])),
    ]
    try:
        for ip in ips:
            st, doc = post(r, ip)
            T.eq(st, 201, f'register {ip}')
            T.eq(doc and doc.get('health', {}).get('status'), 'up', f'{ip} starts up')
        T.check(wait_for(lambda: all(r.req('GET', '/backends/' + ip)[1]['health']['checks'] >= 2
                                     for ip in ips), 5) is not None, 'every backend is checked')
        T.eq(sorted(emu_sets(emu)), all_served, 'all three served (balanced over 2 buckets)')

        for k, what, when_down in rounds:
            ip = ips[k]
            # Stop it: from the socket's close to the zone no longer serving it.
            t_stop = bs[k].stop()
            down_s = wait_for(lambda: emu_view(emu).get(ip, (None,))[0] != 'served',
                              DOWN_BOUND + 10, since=t_stop)
            T.check(down_s is not None and down_s <= DOWN_BOUND,
                    f'{what}: stopped backend out of the served set within {DOWN_BOUND:.1f} s',
                    f'{down_s}')
            T.eq(sorted(emu_sets(emu)), when_down,
                 f'{what}: one atomic move to _down.app.example.com (same set id, weight 0), '
                 f'served weights follow the counts')
            # r53reg learns that the commit succeeded just after the emulator applied it.
            T.check(wait_states(r, {ip: 'down'}, 5) is not None, f'{what}: GET says down')
            st, doc = r.req('GET', '/backends/' + ip)
            h = (doc or {}).get('health', {})
            T.eq((st, doc and doc.get('state')), (200, 'down'), f'{what}: still registered')
            T.check(doc and doc.get('down_since'), f'{what}: down_since is given', str(doc))
            T.eq(h.get('status'), 'down', f'{what}: health status down')
            T.check(h.get('consecutive_failures', 0) >= FALL,
                    f'{what}: consecutive_failures >= fall', str(h))
            T.check('refused' in h.get('last_error', ''), f'{what}: last_error says why', str(h))
            T.check(h.get('last_check_at') and h.get('last_change_at'),
                    f'{what}: check times given', str(h))
            T.eq((metric(r, 'r53reg_backends_served'), metric(r, 'r53reg_backends_down')),
                 (2.0, 1.0), f'{what}: metrics: 2 served, 1 down')
            T.eq([state(r, x) for x in ips if x != ip], ['registered'] * 2,
                 f'{what}: the others stay registered')

            # Restart it (at a random point of the check cycle): from listening again to the
            # zone serving it.
            time.sleep(random.uniform(0, INTERVAL_MS / 1000))
            t_start = bs[k].start()
            up_s = wait_for(lambda: emu_view(emu).get(ip, (None,))[0] == 'served',
                            UP_BOUND + 10, since=t_start)
            T.check(up_s is not None and up_s <= UP_BOUND,
                    f'{what}: restarted backend back in the served set within '
                    f'{UP_BOUND:.1f} s', f'{up_s}')
            T.eq(sorted(emu_sets(emu)), all_served,
                 f'{what}: back where it was, the emptied _down set deleted')
            T.check(wait_states(r, {ip: 'registered'}, 5) is not None,
                    f'{what}: GET says registered')
            st, doc = r.req('GET', '/backends/' + ip)
            T.eq((doc.get('state'), doc.get('health', {}).get('status'), 'down_since' in doc),
                 ('registered', 'up', False), f'{what}: GET says registered and up again')
            MEASURED['down'].append(down_s)
            MEASURED['up'].append(up_s)
            print(f'    detection-to-DNS ({what}): down {_fmt(down_s)} (bound '
                  f'{DOWN_BOUND:.1f} s), up {_fmt(up_s)} (bound {UP_BOUND:.1f} s)', flush=True)

        T.eq((metric(r, 'r53reg_backends_served'), metric(r, 'r53reg_backends_down'),
              metric(r, 'r53reg_backends_draining')), (3.0, 0.0, 0.0), 'metrics: 3 served')
        T.check((metric(r, 'r53reg_health_checks_total', 'result="ok"') or 0) > 0,
                'checks_total{result="ok"} counts')
        T.check((metric(r, 'r53reg_health_checks_total', 'result="fail"') or 0) >= 2 * FALL,
                'checks_total{result="fail"} counts')
        T.check((metric(r, 'r53reg_health_transitions_total', 'to="down"') or 0) >= 2 and
                (metric(r, 'r53reg_health_transitions_total', 'to="up"') or 0) >= 2,
                'transitions_total counts both ways')
        n = metric(r, 'r53reg_health_detection_to_dns_seconds_count')
        T.check(n is not None and n >= 4, 'detection-to-DNS histogram has the four moves',
                f'{n}')
        print(f'    server histogram r53reg_health_detection_to_dns_seconds (verdict to '
              f'commit): sum {metric(r, "r53reg_health_detection_to_dns_seconds_sum"):.4f} s '
              f'over {n or 0:.0f}', flush=True)
        # From the streak's first check: at least (fall - 1) intervals for a move down, (rise
        # - 1) up; each move at most (fall - 1) intervals + the moves' slack.
        f = metric(r, 'r53reg_health_failure_to_dns_seconds_count')
        fs = metric(r, 'r53reg_health_failure_to_dns_seconds_sum')
        T.check(f is not None and f >= 4, 'failure-to-DNS histogram has the four moves', f'{f}')
        if f:
            low = 2 * ((FALL - 1) + (RISE - 1)) * INTERVAL_MS / 1000 * 0.9
            T.check(low <= fs <= f * (max(FALL, RISE) * INTERVAL_MS / 1000 + 1.0),
                    'failure-to-DNS sum within the checks\' own bounds', f'{fs} over {f}')
            print(f'    server histogram r53reg_health_failure_to_dns_seconds (first check of '
                  f'the streak to commit): mean {fs / f:.3f} s over {f:.0f}', flush=True)
    finally:
        T.eq(r.stop(), 0, 'SIGTERM exits 0')
        stop_all(bs)


def _fmt(s):
    return 'n/a' if s is None else f'{s:.2f} s'


def test_http_check(emu):
    """--check tcp for everyone, but two backends register their own HTTP check of /healthz:
    one whose /healthz answers 503 goes down although its port accepts; the other follows its
    /healthz (503 -> down, 200 -> back)."""
    fresh(emu)
    ips = ['127.0.4.1', '127.0.4.2', '127.0.4.3', '127.0.4.4']
    port, bs = backends([(ips[0], 'http'), (ips[1], 'http'), (ips[2], 'tcp'), (ips[3], 'tcp')])
    h1, h2 = bs[0], bs[1]
    h2.status = 503
    r = Reg(emu, '--buckets', '1', *check_flags(port, 'tcp'))
    http_check = {'check': {'type': 'http', 'path': '/healthz', 'status': '200-299'}}
    try:
        st, doc = post(r, ips[0], {'check': {'type': 'ftp'}})
        T.eq((st, doc and doc.get('status')), (400, 400), 'an unknown check type is a 400')
        t_reg = time.monotonic()
        for ip in (ips[1], ips[0]):
            T.eq(post(r, ip, http_check)[0], 201, f'register {ip} with an HTTP check')
        for ip in ips[2:]:
            T.eq(post(r, ip)[0], 201, f'register {ip} (server TCP check)')
        # The first check comes within one interval of the registration.
        took = wait_for(lambda: emu_view(emu).get(ips[1], (None,))[0] == 'down',
                        DOWN_BOUND + 10, since=t_reg)
        T.check(took is not None and took <= DOWN_BOUND,
                f'/healthz answering 503 takes it out within {DOWN_BOUND:.1f} s of registering '
                f'although its port accepts', f'{took}')
        print(f'    HTTP check: 503 from the start, out of the served set {_fmt(took)} after '
              f'registering', flush=True)
        T.check(wait_states(r, {ips[1]: 'down'}, 5) is not None, 'GET says down')
        doc = r.req('GET', '/backends/' + ips[1])[1]
        T.check('503' in doc.get('health', {}).get('last_error', ''),
                'last_error names the 503', str(doc.get('health')))
        T.check(wait_for(lambda: h2.hits >= FALL, 5) is not None,
                'the HTTP check asked /healthz', f'{h2.hits} hits')
        T.check(wait_for(lambda: r.req('GET', '/backends/' + ips[0])[1]['health']['checks'] >= 3,
                         5) is not None, 'the healthy HTTP backend is checked')
        T.eq(kinds(emu_view(emu), ips),
             {ips[0]: 'served', ips[1]: 'down', ips[2]: 'served', ips[3]: 'served'},
             'the healthy HTTP backend and the TCP ones stay served')
        check_zone_shape(emu, 'one HTTP backend down')

        # The same backend's /healthz fails: out; passes again: back.
        t0 = time.monotonic()
        h1.status = 503
        took = wait_for(lambda: emu_view(emu).get(ips[0], (None,))[0] == 'down',
                        DOWN_BOUND + 10, since=t0)
        T.check(took is not None and took <= DOWN_BOUND,
                f'/healthz turning 503 takes it out within {DOWN_BOUND:.1f} s', f'{took}')
        h_down = took
        t0 = time.monotonic()
        h1.status = 200
        h2.status = 204
        took = wait_for(lambda: kinds(emu_view(emu), ips[:2]) == {ips[0]: 'served',
                                                                  ips[1]: 'served'},
                        UP_BOUND + 10, since=t0)
        T.check(took is not None and took <= UP_BOUND,
                f'/healthz answering 200 (204) again brings both back within {UP_BOUND:.1f} s',
                f'{took}')
        print(f'    HTTP check detection-to-DNS: down {_fmt(h_down)}, up {_fmt(took)}',
              flush=True)
        h1.status = 302  # outside the registration's status range 200-299
        took = wait_for(lambda: emu_view(emu).get(ips[0], (None,))[0] == 'down',
                        DOWN_BOUND + 10)
        T.check(took is not None, 'a status outside the check\'s range fails it', f'{took}')
        check_zone_shape(emu, 'HTTP checks')
    finally:
        T.eq(r.stop(), 0, 'r53reg exits 0 on SIGTERM')
        stop_all(bs)


def test_check_off_per_registration(emu):
    """--check off: only backends registered with a check are checked; a check without a
    port is refused when the server has no --check-port."""
    fresh(emu)
    ips = ['127.0.4.11', '127.0.4.12', '127.0.4.13']
    port, bs = backends([(ip, 'tcp') for ip in ips])
    stop_all(bs)  # nothing listens on any of them
    # No fail-open guard here: were the unchecked ones checked, they would go down too.
    r = Reg(emu, '--buckets', '1', '--check', 'off', '--max-down-share', '1',
            '--check-interval-ms', str(INTERVAL_MS),
            '--check-timeout-ms', str(TIMEOUT_MS), '--check-fall', str(FALL),
            '--check-rise', str(RISE))
    try:
        st, doc = post(r, ips[0], {'check': {'type': 'tcp'}})
        T.eq((st, doc and doc.get('status')), (400, 400),
             'a check without a port, no --check-port: 400')
        T.check('port' in ((doc or {}).get('detail') or ''), 'the 400 says the port is missing',
                str(doc))
        T.eq(state(r, ips[0]), 404, 'and nothing was registered')
        T.eq(post(r, ips[0])[0], 201, 'register without a check')
        T.eq(post(r, ips[1])[0], 201, 'register another without a check')
        t_reg = time.monotonic()
        T.eq(post(r, ips[2], {'check': {'type': 'tcp', 'port': port}})[0], 201,
             'register one with its own TCP check')
        took = wait_for(lambda: emu_view(emu).get(ips[2], (None,))[0] == 'down',
                        DOWN_BOUND + 10, since=t_reg)
        T.check(took is not None and took <= DOWN_BOUND,
                'the backend with a check (nothing listening) goes down', f'{took}')
        time.sleep((FALL + 1) * INTERVAL_MS / 1000)  # longer than the checked one needed
        doc = r.req('GET', '/backends/' + ips[0])[1]
        T.eq((doc.get('state'), 'health' in doc), ('registered', False),
             'a backend without a check is never checked (nothing listens there either)')
        T.eq(kinds(emu_view(emu), ips), {ips[0]: 'served', ips[1]: 'served', ips[2]: 'down'},
             'zone: the unchecked ones stay served')
    finally:
        T.eq(r.stop(), 0, 'r53reg exits 0 on SIGTERM')


def test_fail_open(emu):
    """4 backends, --max-down-share 0.5: stopping 3 takes exactly 2 out of DNS; the third is
    kept served (GET says kept_by_fail_open, the log says fail-open at level=error, metrics
    count it). Restarting one of the two down ones brings it back (recoveries always go
    through) and frees the slot the kept one then takes: 2 served, 2 down, nothing held."""
    fresh(emu)
    ips = [f'127.0.5.{i}' for i in range(1, 5)]
    port, bs = backends([(ip, 'tcp') for ip in ips])
    r = Reg(emu, '--buckets', '1', '--max-down-share', '0.5', *check_flags(port))
    try:
        for ip in ips:
            T.eq(post(r, ip)[0], 201, f'register {ip}')
        T.check(wait_for(lambda: all(r.req('GET', '/backends/' + ip)[1]['health']['checks'] >= 1
                                     for ip in ips), 5) is not None, 'every backend is checked')
        for b in bs[1:]:
            b.stop()
        stopped = ips[1:]

        def settled():
            hs = {ip: r.req('GET', '/backends/' + ip)[1] for ip in stopped}
            return all(h.get('health', {}).get('status') == 'down' for h in hs.values()) and \
                sum(h['state'] == 'down' for h in hs.values()) == 2
        T.check(wait_for(settled, DOWN_BOUND + 10) is not None,
                'all three fail their checks and two go down')
        time.sleep(3 * INTERVAL_MS / 1000)  # several more failed checks: nothing else moves
        docs = {ip: r.req('GET', '/backends/' + ip)[1] for ip in ips}
        down = sorted(ip for ip in stopped if docs[ip]['state'] == 'down')
        held = [ip for ip in stopped if docs[ip]['state'] == 'registered']
        T.eq((len(down), len(held)), (2, 1), 'exactly 2 out of DNS, the third kept')
        view = emu_view(emu)
        T.eq(sorted(ip for ip in ips if view.get(ip, (None,))[0] == 'down'), down,
             'the zone\'s _down set holds exactly those 2')
        T.eq(sorted(ip for ip in ips if view.get(ip, (None,))[0] == 'served'),
             sorted([ips[0]] + held), 'the running one and the kept one are served')
        check_zone_shape(emu, 'fail-open')
        if held:
            h = docs[held[0]].get('health', {})
            T.eq((h.get('status'), h.get('kept_by_fail_open')), ('down', True),
                 'GET of the kept one: health down, kept_by_fail_open')
        T.check(all('kept_by_fail_open' not in docs[ip].get('health', {}) for ip in down),
                'the down ones are not marked kept')
        T.check(re.search(r'level=error msg="fail-open: [^"]*"', log_text(r)),
                'the log has a level=error fail-open line')
        T.eq(metric(r, 'r53reg_health_fail_open_held'), 1.0, 'metrics: fail_open_held 1')
        T.check((metric(r, 'r53reg_health_fail_open_total') or 0) >= 1,
                'metrics: fail_open_total counts the activation')
        T.eq((metric(r, 'r53reg_backends_served'), metric(r, 'r53reg_backends_down')),
             (2.0, 2.0), 'metrics: 2 served, 2 down')

        # Recovery goes through; the freed slot goes to the kept one.
        if len(down) == 2 and len(held) == 1:
            revived = down[0]
            next(b for b in bs if b.ip == revived).start()
            want = {revived: 'registered', held[0]: 'down', down[1]: 'down', ips[0]: 'registered'}
            took = wait_states(r, want, UP_BOUND + DOWN_BOUND + 10)
            T.check(took is not None, 'the restarted one returns and the kept one goes down',
                    str({ip: state(r, ip) for ip in ips}))
            T.eq(kinds(emu_view(emu), ips), {ip: {'registered': 'served', 'down': 'down'}[s]
                                             for ip, s in want.items()},
                 'zone: 2 served, 2 down')
            T.check(wait_for(lambda: metric(r, 'r53reg_health_fail_open_held') == 0, 5)
                    is not None, 'metrics: nothing held any more')
            T.check('kept_by_fail_open' not in r.req('GET', '/backends/' + held[0])[1]
                    .get('health', {}), 'the formerly kept one is no longer marked')
            T.check('fail-open guard released' in log_text(r), 'the log says the guard released')
        for b in bs:
            if not b.running:
                b.start()
        took = wait_for(lambda: kinds(emu_view(emu), ips) == {ip: 'served' for ip in ips},
                        UP_BOUND + 10)
        T.check(took is not None, 'all four back once their backends run')
        T.eq(emu_sets(emu), [('served', 'app.example.com_0', 'A', 4, 60, ips)],
             'one served set of weight 4, no _down set')
    finally:
        T.eq(r.stop(), 0, 'r53reg exits 0 on SIGTERM')
        stop_all(bs)


def test_leases(emu):
    """A heartbeat renews a lease; a missed one deregisters; a down backend whose lease
    expires leaves the zone entirely (its _down set too)."""
    fresh(emu)
    ips = ['127.0.6.1', '127.0.6.2', '127.0.6.3']
    port, bs = backends([(ip, 'tcp') for ip in ips])
    bs[1].stop()  # ips[1] never answers: it goes down, then its lease runs out
    r = Reg(emu, '--buckets', '1', *check_flags(port))
    try:
        T.eq(post(r, ips[2])[0], 201, 'a backend without a lease')
        t_down = time.monotonic()
        st, doc = post(r, ips[1], {'lease_seconds': 5})
        T.eq((st, doc and doc.get('lease_seconds')), (201, 5), 'register with a 5 s lease')
        t_lease = time.monotonic()
        st, doc = post(r, ips[0], {'lease_seconds': 3})
        T.eq((st, doc and doc.get('lease_seconds')), (201, 3), 'register with a 3 s lease')
        T.check(doc and doc.get('lease_expires_at'), 'lease_expires_at given', str(doc))
        # Heartbeats every 0.5 s for 3.5 s: past the first deadline, still registered.
        while time.monotonic() - t_lease < 3.5:
            time.sleep(0.5)
            st, doc = r.req('PUT', f'/backends/{ips[0]}/heartbeat')
            if not T.eq(st, 200, 'heartbeat renews'):
                break
        T.eq(state(r, ips[0]), 'registered', 'heartbeats kept it registered past its lease')
        T.eq(emu_view(emu).get(ips[0], (None,))[0], 'served', 'and served')

        # Meanwhile ips[1] went down.
        took = wait_for(lambda: emu_view(emu).get(ips[1], (None,))[0] == 'down', 10,
                        since=t_down)
        T.check(took is not None and took < 5, 'the never-answering one went down first',
                f'{took}')
        T.check(wait_states(r, {ips[1]: 'down'}, 5) is not None, 'GET says down')

        # Stop the heartbeats: ips[0] expires about 3 s after the last one.
        t_last = time.monotonic()
        took = wait_for(lambda: state(r, ips[0]) == 404, 3 + 3, since=t_last)
        T.check(took is not None and took >= 2.5, 'a missed heartbeat deregisters', f'{took}')
        T.check(ips[0] not in emu_view(emu), 'the expired backend left the zone')
        T.eq(r.req('PUT', f'/backends/{ips[0]}/heartbeat')[0], 404, 'a late heartbeat is 404')

        took = wait_for(lambda: ips[1] not in emu_view(emu), 5 + 3, since=t_lease)
        T.check(took is not None, 'the down backend\'s lease expired: out of the zone', f'{took}')
        T.eq(state(r, ips[1]), 404, 'and no longer registered')
        T.eq(emu_sets(emu), [('served', 'app.example.com_0', 'A', 1, 60, [ips[2]])],
             'only the lease-less backend is left; no _down set')
    finally:
        T.eq(r.stop(), 0, 'r53reg exits 0 on SIGTERM')
        stop_all(bs)


def test_drain(emu):
    """Drain: _draining set, times, idempotent, back to service by POST, DELETE ends it; a
    draining backend whose checks fail stays draining; DELETE of a down backend."""
    fresh(emu)
    ips = ['127.0.7.1', '127.0.7.2', '127.0.7.3', '127.0.7.4']
    port, bs = backends([(ip, 'tcp') for ip in ips])
    ttl = 2
    r = Reg(emu, '--buckets', '1', '--ttl', str(ttl), *check_flags(port))
    try:
        for ip in ips:
            T.eq(post(r, ip)[0], 201, f'register {ip}')
        st, doc = post(r, ips[0], suffix='/drain')
        T.eq((st, doc and doc.get('state')), (200, 'draining'), 'drain: 200, draining')
        doc = doc or {}
        drained_at = doc.get('drained_at')
        T.check(drained_at and doc.get('no_new_traffic_after'), 'drain times given', str(doc))
        if drained_at and doc.get('no_new_traffic_after'):
            T.eq(round(parse_time(doc['no_new_traffic_after']) - parse_time(drained_at), 3),
                 float(ttl), 'no_new_traffic_after = drained_at + --ttl')
            T.eq(doc.get('drained'), time.time() >= parse_time(doc['no_new_traffic_after']),
                 'drained says whether the TTL has passed')
        sets = emu_sets(emu)
        T.eq(sets, [('served', 'app.example.com_0', 'A', 3, ttl, ips[1:]),
                    ('draining', 'app.example.com_0', 'A', 0, ttl, ips[:1])],
             'zone: out of the served set, in _draining.app.example.com, same set id')
        st, again = post(r, ips[0], suffix='/drain')
        T.eq((st, again and again.get('drained_at')), (200, drained_at),
             'draining again: 200, same drained_at')
        T.eq(metric(r, 'r53reg_backends_draining'), 1.0, 'metrics: 1 draining')
        if drained_at:
            until = parse_time(doc['no_new_traffic_after']) - time.time() + 0.2
            time.sleep(max(until, 0))
        T.eq(r.req('GET', '/backends/' + ips[0])[1].get('drained'), True,
             'after the TTL: drained true')

        # Its backend stops: draining it stays (checks move served backends only).
        bs[0].stop()
        time.sleep((FALL + 2) * INTERVAL_MS / 1000 + 0.3)
        doc = r.req('GET', '/backends/' + ips[0])[1]
        T.eq(doc.get('health', {}).get('status'), 'down', 'its checks fail')
        T.eq((doc.get('state'), emu_view(emu).get(ips[0], (None,))[0]),
             ('draining', 'draining'), 'a draining backend failing its checks stays draining')

        # An orchestrator's PUT /backends listing it keeps the drain.
        conn = http.client.HTTPConnection('127.0.0.1', r.port, timeout=120)
        conn.request('PUT', '/backends', body=json.dumps({'backends': ips}).encode(),
                     headers={'Content-Type': 'application/json'})
        resp = conn.getresponse()
        put_doc = json.loads(resp.read())
        conn.close()
        T.eq((resp.status, put_doc.get('unchanged'), state(r, ips[0])),
             (200, len(ips), 'draining'), 'PUT /backends listing it: unchanged, still draining')

        # POST while its checks fail: into the down set, never served meanwhile.
        st, doc = post(r, ips[0])
        T.eq((st, doc and doc.get('state')), (200, 'down'),
             'POST of a draining backend whose checks fail: down')
        T.eq(kinds(emu_view(emu), ips[:1]), {ips[0]: 'down'}, 'zone: in _down, not served')

        # Its backend comes back: served again through the checks.
        bs[0].start()
        T.check(wait_for(lambda: state(r, ips[0]) == 'registered', UP_BOUND + 5) is not None,
                'its checks pass again: registered')
        doc = r.req('GET', '/backends/' + ips[0])[1]
        T.check(doc and 'drained_at' not in doc, 'no drain times any more', str(doc))
        T.eq(kinds(emu_view(emu), ips[:1]), {ips[0]: 'served'}, 'served again')
        # And a plain drain + POST returns a healthy backend to service at once.
        T.eq(post(r, ips[0], suffix='/drain')[0], 200, 'drain it again')
        st, doc = post(r, ips[0])
        T.eq((st, doc and doc.get('state')), (200, 'registered'), 'POST returns it to service')
        T.eq(kinds(emu_view(emu), ips[:1]), {ips[0]: 'served'}, 'served again at once')

        # Drain then DELETE: gone entirely.
        T.eq(post(r, ips[1], suffix='/drain')[0], 200, 'drain another')
        st, doc = r.req('DELETE', '/backends/' + ips[1])
        T.eq(st, 200, 'DELETE a draining backend')
        T.check(ips[1] not in emu_view(emu), 'it left the zone, _draining set included')
        T.eq(state(r, ips[1]), 404, 'no longer registered')

        # A down backend: DELETE takes it out of _down.
        bs[2].stop()
        took = wait_for(lambda: emu_view(emu).get(ips[2], (None,))[0] == 'down',
                        DOWN_BOUND + 10)
        T.check(took is not None, 'a stopped backend went down', f'{took}')
        T.eq(r.req('DELETE', '/backends/' + ips[2])[0], 200, 'DELETE a down backend')
        T.check(ips[2] not in emu_view(emu), 'it left the zone, _down set included')
        T.eq(emu_sets(emu), [('served', 'app.example.com_0', 'A', 2, ttl, [ips[0], ips[3]])],
             'what is left: one served set of weight 2')
        T.eq((metric(r, 'r53reg_backends_served'), metric(r, 'r53reg_backends_down'),
              metric(r, 'r53reg_backends_draining')), (2.0, 0.0, 0.0), 'metrics follow')
    finally:
        T.eq(r.stop(), 0, 'r53reg exits 0 on SIGTERM')
        stop_all(bs)


def restart_case(start, view, label, net):
    """Served stay served, down stay down (and need rise passes once their backend runs),
    draining stay draining, across a SIGTERM and a start with the same flags."""
    ips = [f'127.0.{net}.{i}' for i in range(1, 5)]
    port, bs = backends([(ip, 'tcp') for ip in ips])
    served, dn, dr = ips[:2], ips[2], ips[3]
    flags = ['--buckets', '2', *check_flags(port)]
    r = start(flags)
    try:
        for ip in ips:
            T.eq(post(r, ip)[0], 201, f'{label}: register {ip}')
        T.eq(post(r, dr, suffix='/drain')[0], 200, f'{label}: drain {dr}')
        bs[2].stop()
        T.check(wait_for(lambda: view(r).get(dn, (None,))[0] == 'down', DOWN_BOUND + 10)
                is not None, f'{label}: {dn} went down')
        wait_states(r, {dn: 'down'}, 5)
        before = r.req('GET', '/backends')[1]
        want = {served[0]: 'registered', served[1]: 'registered', dn: 'down', dr: 'draining'}
        T.eq({b['ip']: b['state'] for b in before['backends']}, want, f'{label}: states before')
        zone_before = view(r)
    finally:
        T.eq(r.stop(), 0, f'{label}: SIGTERM exits 0')
    r = start(flags)
    try:
        after = r.req('GET', '/backends')[1]
        T.eq(after, before, f'{label}: GET /backends after the restart is the same')
        T.eq(view(r), zone_before, f'{label}: the zone is the same')
        doc = r.req('GET', '/backends/' + dn)[1]
        T.eq((doc.get('state'), doc.get('health', {}).get('status')), ('down', 'down'),
             f'{label}: the down one loads down, its checker starts it down')
        T.check(doc.get('down_since'), f'{label}: down_since given', str(doc))
        doc = r.req('GET', '/backends/' + dr)[1]
        T.check(doc.get('state') == 'draining' and doc.get('drained_at'),
                f'{label}: the draining one loads draining, with drained_at', str(doc))
        # Several intervals with its backend still stopped: no flap back into DNS.
        stable = wait_for(lambda: view(r).get(dn, (None,))[0] != 'down', 4 * INTERVAL_MS / 1000)
        T.eq(stable, None, f'{label}: the down one stays down while its backend is stopped')
        T.eq(kinds(view(r), ips), {served[0]: 'served', served[1]: 'served', dn: 'down',
                                    dr: 'draining'}, f'{label}: every set where it was')
        t0 = bs[2].start()
        took = wait_for(lambda: view(r).get(dn, (None,))[0] == 'served', UP_BOUND + 10, since=t0)
        T.check(took is not None and took <= UP_BOUND,
                f'{label}: its backend restarted, it returns within {UP_BOUND:.1f} s', f'{took}')
        doc = r.req('GET', '/backends/' + dn)[1]
        T.check(doc.get('health', {}).get('consecutive_successes', 0) >= RISE,
                f'{label}: after rise passing checks', str(doc.get('health')))
        T.eq(state(r, dr), 'draining', f'{label}: the draining one is still draining')
    finally:
        T.eq(r.stop(), 0, f'{label}: SIGTERM exits 0 again')
        stop_all(bs)


def test_restart_route53(emu):
    fresh(emu)
    restart_case(lambda flags: Reg(emu, *flags), lambda r: emu_view(emu), 'route53', 8)


def test_restart_memory(_):
    with tempfile.TemporaryDirectory(prefix='r53reg-health-') as d:
        state_file = os.path.join(d, 'state.journal')
        restart_case(lambda flags: MemReg(state_file, *flags), mem_view, 'memory', 9)


def test_replicas_share_state(emu):
    """Two r53reg processes on one zone: A checks its backends, B does not; B learns A's
    moves (down, up, drain) from the zone by --resync-interval, without writing, and can act on
    them (deregister a backend A took down)."""
    fresh(emu)
    ips = ['127.0.9.41', '127.0.9.42', '127.0.9.43']
    port, bs = backends([(ip, 'tcp') for ip in ips])
    a = Reg(emu, '--buckets', '2', '--resync-interval', '1', *check_flags(port))
    b = Reg(emu, '--buckets', '2', '--resync-interval', '1')
    try:
        for ip in ips:
            T.eq(post(a, ip)[0], 201, 'A registers ' + ip)
        T.check(wait_states(b, {ip: 'registered' for ip in ips}, 5) is not None,
                'B sees A\'s registrations by resync')
        bs[0].stop()
        T.check(wait_states(a, {ips[0]: 'down'}, DOWN_BOUND + 5) is not None,
                'A takes the stopped one down')
        T.check(wait_states(b, {ips[0]: 'down'}, 5) is not None,
                'B sees it down (the zone says so)')
        T.eq(post(a, ips[1], suffix='/drain')[0], 200, 'A drains another')
        T.check(wait_states(b, {ips[1]: 'draining'}, 5) is not None,
                'B sees it draining')
        bs[0].start()
        T.check(wait_states(a, {ips[0]: 'registered'}, UP_BOUND + 5) is not None,
                'A brings it back')
        T.check(wait_states(b, {ips[0]: 'registered'}, 5) is not None,
                'B sees it back')
        bs[2].stop()
        T.check(wait_states(b, {ips[2]: 'down'}, DOWN_BOUND + 6) is not None,
                'B sees the next one down')
        time.sleep(1.5)  # more than one resync of B's with it down: B must not bring it back
        T.eq(state(b, ips[2]), 'down', 'B leaves it down (nothing checks it there)')
        T.eq(writes(b), 0, 'B followed every move without writing')
        st, _ = b.req('DELETE', '/backends/' + ips[2])
        T.eq(st, 200, 'B deregisters a backend A took down')
        T.check(ips[2] not in emu_view(emu), 'it left the zone, _down set included')
        T.check(wait_states(a, {ips[2]: 404}, 5) is not None,
                'A sees it gone')
        check_zone_shape(emu, 'two replicas')
    finally:
        T.eq(a.stop(), 0, 'A exits 0 on SIGTERM')
        T.eq(b.stop(), 0, 'B exits 0 on SIGTERM')
        stop_all(bs)


def main():
    test_route53.BIN = sys.argv[1]
    emu = Emu(os.path.join(sys.argv[1], 'r53emu'), '--insync-after-ms', '50')
    t0 = time.monotonic()
    try:
        T.run('stop and restart a TCP backend', test_stop_and_restart, emu)
        T.run('HTTP check per registration', test_http_check, emu)
        T.run('--check off: per-registration checks only', test_check_off_per_registration,
              emu)
        T.run('fail-open guard', test_fail_open, emu)
        T.run('leases', test_leases, emu)
        T.run('drain', test_drain, emu)
        T.run('restart (route53 emulator)', test_restart_route53, emu)
        T.run('restart (memory --state-file)', test_restart_memory, emu)
        T.run('replicas share health state through the zone', test_replicas_share_state, emu)
    finally:
        emu.stop()
    for way in ('down', 'up'):
        got = [x for x in MEASURED[way] if x is not None]
        if got:
            print(f'    detection-to-DNS {way}: ' + ', '.join(f'{x:.2f}' for x in got) +
                  f' s (bound {DOWN_BOUND if way == "down" else UP_BOUND:.1f} s)', flush=True)
    print(f'    total {time.monotonic() - t0:.1f} s', flush=True)
    T.finish()


if __name__ == '__main__':
    main()
