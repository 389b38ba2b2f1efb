"""Two r53reg replicas that know each other (--peers) against the strict Route 53 emulator.

Usage: test_fleet.py BIN_DIR   (holds r53reg and r53emu)

Shows, end to end: both replicas count a fleet of 2 (r53reg_fleet_replicas) and split the
Route 53 budget; the /fleet/ endpoints take only the peer token; a leased backend whose
heartbeats go only to the other replica keeps its lease (no Route 53 call), while one nobody
heartbeats is removed; health checks are split: each backend is checked by exactly one
replica, the one rendezvous hashing names, and the failing ones reach the down set. Also: a
live peer whose /fleet/leases fails postpones an expiry (a few tries) instead of causing it,
and its rising throttle count is followed at most once per 10 s; hung peer URLs do not make a
healthy peer flap; failed /fleet/ authentications are rate limited.
Waits poll for conditions with generous deadlines; nothing asserts how fast. Prints
'N passed, M failed' last.
"""
import http.client
import http.server
import json
import os
import re
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'r53emu'))
from emutest import Emu, Tally  # noqa: E402
import reg_process  # noqa: E402

BIN = sys.argv[1] if __name__ == '__main__' else None
T = Tally()
NAME = 'app.example.com.'
DOWN_NAME = '_down.app.example.com.'
TOKEN = 'fleet-test-Secret-0123456789'


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Replica(reg_process.Reg):
    """One r53reg process (reg_process.Reg) on a fixed 127.0.0.1 port, since peers must know
    it before it starts, with --peers and the peer token."""

    def __init__(self, emu, port, peers, *extra):
        super().__init__(emu, '--listen', f'127.0.0.1:{port}', '--peers', ','.join(peers),
                         *extra, env_extra={'R53REG_PEER_TOKEN': TOKEN})

    def req(self, method, path, body=None, headers=None):
        """(status, JSON document or text)."""
        conn = http.client.HTTPConnection('127.0.0.1', self.port, timeout=60)
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        try:
            return resp.status, json.loads(data)
        except ValueError:
            return resp.status, data.decode(errors='replace')

    def metric(self, name):
        _, text = self.req('GET', '/metrics')
        m = re.search(r'^' + re.escape(name) + r' ([0-9.e+-]+)$', text, re.M)
        return float(m.group(1)) if m else None

    def peer(self):
        return self.req('GET', '/fleet/peer', headers={'Authorization': 'Bearer ' + TOKEN})[1]

    def logtext(self):
        self.log.flush()
        with open(self.log.name, errors='replace') as f:
            return f.read()


def wait_for(cond, timeout, step=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return cond()


def zone_values(emu, name):
    out = set()
    for rs in emu.rrsets():
        if rs['name'] == name and rs.get('set_identifier', '').startswith('app.example.com_'):
            out.update(rs['values'])
    return out


# The owner choice of registry/fleet.c, written again: both sides must agree.
def rendezvous_weight(inst, ip):
    m, p = (1 << 64) - 1, 1099511628211
    h = 1469598103934665603
    for c in inst.encode():
        h = ((h ^ c) * p) & m
    h = ((h ^ 0xff) * p) & m
    h = ((h ^ 4) * p) & m
    for b in bytes(int(x) for x in ip.split('.')) + bytes(12):
        h = ((h ^ b) * p) & m
    h ^= h >> 30
    h = (h * 0xbf58476d1ce4e5b9) & m
    h ^= h >> 27
    h = (h * 0x94d049bb133111eb) & m
    h ^= h >> 31
    return h


def owner(members, ip):
    return max(sorted(members), key=lambda i: rendezvous_weight(i, ip))


def test_fleet_size(a, b):
    T.check(wait_for(lambda: a.metric('r53reg_fleet_replicas') == 2 and
                     b.metric('r53reg_fleet_replicas') == 2, 30),
            'both replicas count a fleet of 2',
            f"{a.metric('r53reg_fleet_replicas')} {b.metric('r53reg_fleet_replicas')}")
    pa, pb = a.peer(), b.peer()
    T.eq(pa['fleet_size'], 2, 'fleet_size in /fleet/peer')
    T.eq(sorted(pa['members']), sorted([pa['instance'], pb['instance']]), 'members')
    T.eq(pa['members'], pb['members'], 'both see the same members')
    T.eq(pa['api_share'], 0.5, 'each replica takes half the --api-rps budget')
    # The peer token only: no token, a wrong one, an admin-looking one.
    T.eq(a.req('GET', '/fleet/peer')[0], 401, 'no token: 401')
    T.eq(a.req('GET', '/fleet/peer', headers={'Authorization': 'Bearer ' + TOKEN + 'x'})[0],
         401, 'a wrong token: 401')
    st, doc = a.req('GET', '/fleet/leases?ips=10.0.0.01',
                    headers={'Authorization': 'Bearer ' + TOKEN})
    T.eq((st, doc.get('type') if isinstance(doc, dict) else doc),
         (400, 'urn:r53reg:problem:invalid-ip'), 'a bad address in ?ips=: 400 problem')
    # The own URL is in --peers: recognised by its instance id, not counted twice.
    T.check('this peer URL is this replica' in a.logtext(), 'own URL recognised')


def test_leases(emu, a, b):
    kept, unheard = '127.0.0.11', '127.0.0.12'
    for ip in (kept, unheard):
        st, doc = a.req('POST', f'/backends/{ip}', json.dumps({'lease_seconds': 5}),
                        {'Content-Type': 'application/json'})
        T.check(st in (200, 201), f'register {ip} (lease 5 s) through replica A', f'{st} {doc}')
    # Heartbeats go to replica B only (a round-robin balancer that happens to pick B).
    in_dns = []
    deadline = time.monotonic() + 14
    while time.monotonic() < deadline:
        st, doc = b.req('PUT', f'/backends/{kept}/heartbeat')
        if st == 200:
            in_dns.append(doc.get('in_dns'))
        time.sleep(1)
    T.check(in_dns and all(in_dns), 'heartbeats through B answer in_dns: true', f'{in_dns}')
    T.check(kept in zone_values(emu, NAME),
            'a lease heartbeated only through B is kept by A (two lease lengths later)')
    T.check(wait_for(lambda: unheard not in zone_values(emu, NAME), 20),
            'a backend nobody heartbeats is removed')
    T.check(wait_for(lambda: (a.metric('r53reg_fleet_leases_kept_total') or 0) >= 1, 10),
            'A counted leases kept on a peer\'s word',
            f"{a.metric('r53reg_fleet_leases_kept_total')}")
    T.check('lease renewed on a peer' in a.logtext(), 'A logged the renewal')


def test_health_split(emu, a, b):
    ips = [f'127.0.0.{n}' for n in range(101, 125)]
    for ip in ips:
        st, doc = a.req('POST', f'/backends/{ip}')
        T.check(st in (200, 201), f'register {ip}', f'{st} {doc}')
    members = a.peer()['members']
    inst = {a.peer()['instance']: a, b.peer()['instance']: b}

    def checked_by():
        out = {}
        for ip in ips:
            who = []
            for r in (a, b):
                st, doc = r.req('GET', f'/backends/{ip}')
                if st == 200 and 'health' in doc:
                    who.append(r)
            out[ip] = who
        return out

    # B learns the registrations at its next resync (1 s) and checks those it owns; A checks
    # them all until then and 10 s more, then hands B's over.
    split = wait_for(lambda: (lambda m: m if all(len(w) == 1 for w in m.values()) else None)(
        checked_by()), 40, step=0.5) or checked_by()
    T.check(all(len(w) == 1 for w in split.values()), 'each backend is checked by one replica',
            {ip: len(w) for ip, w in split.items() if len(w) != 1})
    agree = [ip for ip, w in split.items() if len(w) == 1 and w[0] is inst[owner(members, ip)]]
    T.eq(len(agree), len(ips), 'the checking replica is the rendezvous owner')
    n_a = sum(1 for w in split.values() if w and w[0] is a)
    T.check(0 < n_a < len(ips), 'both replicas check some backends', f'A checks {n_a}')
    # Nothing listens on the check port: every backend fails and its owner moves it down.
    T.check(wait_for(lambda: set(ips) <= zone_values(emu, DOWN_NAME), 30, step=0.5),
            'every failing backend reached the down set (written by its owner)',
            f'{len(set(ips) & zone_values(emu, DOWN_NAME))} of {len(ips)}')


def test_interim_checks(emu, check_flags):
    """A backend registered through a replica that does not own its checks is checked there
    until the owner has read it: with a resync interval of an hour the owner does not know it,
    and without the interim nobody would check it."""
    pc, pd = free_port(), free_port()
    peers = [f'http://127.0.0.1:{pc}', f'http://127.0.0.1:{pd}']
    c = Replica(emu, pc, peers, *check_flags, '--resync-interval', '3600')
    d = Replica(emu, pd, peers, *check_flags, '--resync-interval', '3600')
    try:
        T.check(wait_for(lambda: c.peer()['fleet_size'] == 2 and d.peer()['fleet_size'] == 2, 30),
                'the two replicas see each other')
        members = c.peer()['members']
        d_inst = d.peer()['instance']
        ips = [f'127.0.0.{n}' for n in range(131, 143)]
        for ip in ips:
            st, doc = c.req('POST', f'/backends/{ip}')
            T.check(st in (200, 201), f'register {ip} through C', f'{st} {doc}')
        owned_by_d = [ip for ip in ips if owner(members, ip) == d_inst]
        T.check(owned_by_d, 'some of them are owned by D', str(members))
        T.check(wait_for(lambda: set(ips) <= zone_values(emu, DOWN_NAME), 30, step=0.5),
                'every failing backend reached the down set, those D owns too',
                f'missing {sorted(set(ips) - zone_values(emu, DOWN_NAME))}')
        for ip in ips:
            c.req('DELETE', f'/backends/{ip}')
    finally:
        T.eq(c.stop(), 0, 'C stops cleanly')
        T.eq(d.stop(), 0, 'D stops cleanly')


def test_unanswered_peer_presumed(emu):
    """A URL of --peers that never answers is presumed another replica for its first polls
    (replicas started together must not each take the whole budget while they find each
    other), then dropped: the share goes from at most a half to the whole."""
    port, dead = free_port(), free_port()
    r = Replica(emu, port, [f'http://127.0.0.1:{port}', f'http://127.0.0.1:{dead}'])
    try:
        first = r.peer()['api_share']
        # Half, or a third while this replica's own URL has not answered its first poll yet.
        T.check(first <= 0.5, 'at start an unanswered peer URL counts: at most half the budget',
                str(first))
        T.check(wait_for(lambda: r.peer()['api_share'] == 1.0, 30),
                'after its polls fail, the whole budget', str(r.peer()))
        T.eq(r.peer()['fleet_size'], 1, 'and a fleet of one')
        T.check('rate budget shared' in r.logtext(), 'the log says so')
    finally:
        T.eq(r.stop(), 0, 'the replica stops cleanly')


class FakePeer:
    """A live but broken peer: GET /fleet/peer answers (so it counts as live) with a
    throttle.cuts that rises on every poll, as a forged or buggy peer could; GET /fleet/leases
    answers 500."""

    def __init__(self):
        self.lease_asks = 0
        self.polls = 0
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                if self.path.startswith('/fleet/peer'):
                    fake.polls += 1
                    body = json.dumps({'instance': 'fake-peer-0001', 'version': 'x',
                                       'started': 0, 'fleet_size': 2, 'members': [],
                                       'api_share': 0.5,
                                       'throttle': {'cuts': fake.polls,
                                                    'last_cut_ms_ago': 0}}).encode()
                    self.send_response(200)
                elif self.path.startswith('/fleet/leases'):
                    fake.lease_asks += 1
                    body = b'{"type": "about:blank", "status": 500}'
                    self.send_response(500)
                else:
                    body = b'{}'
                    self.send_response(404)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.url = f'http://127.0.0.1:{self.server.server_address[1]}'
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def test_unanswering_live_peer(emu):
    """A live peer whose /fleet/leases fails may have heard the backend: the expiry waits
    (3 s, 3 times) instead of deregistering at once, then happens. The same peer reports a
    rising throttle count on every poll: its cuts are followed at most once per 10 s."""
    fake = FakePeer()
    port = free_port()
    t_start = time.monotonic()
    r = Replica(emu, port, [f'http://127.0.0.1:{port}', fake.url])
    ip = '127.0.0.31'

    def registered():  # served or down: replicas A and B, still running, check it and fail
        return zone_values(emu, NAME) | zone_values(emu, DOWN_NAME)
    try:
        T.check(wait_for(lambda: r.peer()['fleet_size'] == 2, 20), 'the fake peer is live',
                str(r.peer()))
        st, doc = r.req('POST', f'/backends/{ip}', json.dumps({'lease_seconds': 3}),
                        {'Content-Type': 'application/json'})
        T.check(st in (200, 201), f'register {ip} (lease 3 s)', f'{st} {doc}')
        t0 = time.monotonic()
        T.check(wait_for(lambda: ip in registered(), 10), 'it is in DNS')
        # Without the fix it left DNS about 3.3 s after registering.
        time.sleep(max(0.0, t0 + 8 - time.monotonic()))
        T.check(ip in registered(),
                'still in DNS 8 s after registering (a 3 s lease): the expiry waits',
                f'lease asks: {fake.lease_asks}')
        T.check('lease expiry postponed' in r.logtext(), 'the log says the expiry waits')
        T.check(wait_for(lambda: ip not in registered(), 30),
                'after its tries the expiry is carried out')
        gone = time.monotonic() - t0
        T.check(fake.lease_asks >= 4, 'asked 4 times (the expiry and 3 retries)',
                str(fake.lease_asks))
        T.check(gone > 9, 'not before the retries (3 + 3 x 3 s)', f'{gone:.1f} s')
        # Rising cuts on every 2 s poll: followed at most once per 10 s (and once at least).
        elapsed = time.monotonic() - t_start
        followed = r.logtext().count('cut the rate here too')
        T.check(1 <= followed <= int(elapsed / 10) + 2,
                'a peer\'s rising cuts are followed at most once per 10 s',
                f'{followed} cuts followed in about {elapsed:.0f} s, {fake.polls} polls')
    finally:
        T.eq(r.stop(), 0, 'the replica stops cleanly')
        fake.stop()


def test_hung_urls(emu):
    """Eight URLs that accept connections but never answer make a round of polls take about
    8 s (1 s timeout each): longer than the old fixed 7 s liveness window. The healthy peer
    must stay a member all along."""
    hung = []
    for _ in range(8):
        s = socket.socket()
        s.bind(('127.0.0.1', 0))
        s.listen(64)
        hung.append(s)
    pc, pd = free_port(), free_port()
    both = [f'http://127.0.0.1:{pc}', f'http://127.0.0.1:{pd}']
    c = d = None
    try:
        c = Replica(emu, pc, both + [f'http://127.0.0.1:{s.getsockname()[1]}' for s in hung])
        d = Replica(emu, pd, both)
        T.check(wait_for(lambda: c.peer()['fleet_size'] == 2, 40),
                'with 8 hung URLs the healthy peer becomes a member', str(c.peer()))
        sizes = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            sizes.append(c.peer()['fleet_size'])
            time.sleep(0.5)
        T.check(all(n == 2 for n in sizes), 'and stays one (20 s, rounds of about 8 s)',
                str(sizes))
    finally:
        for r in (c, d):
            if r:
                T.eq(r.stop(), 0, f'replica on {r.port} stops cleanly')
        for s in hung:
            s.close()


def test_fleet_auth_limited(emu):
    """Failed /fleet/ authentications take from the caller's --client-rps bucket; once it is
    empty every /fleet/ request from that caller is 429, right token or not, until it
    refills. The right token alone takes nothing."""
    port = free_port()
    r = Replica(emu, port, [f'http://127.0.0.1:{port}'], '--client-rps', '1',
                '--client-burst', '3')
    good = {'Authorization': 'Bearer ' + TOKEN}
    bad = {'Authorization': 'Bearer ' + TOKEN + 'x'}
    try:
        T.eq([r.req('GET', '/fleet/peer', headers=good)[0] for _ in range(6)], [200] * 6,
             'the right token is not limited')
        sts = [r.req('GET', '/fleet/peer', headers=bad)[0] for _ in range(5)]
        T.check(sts[:2] == [401, 401], 'wrong tokens: 401 while the bucket lasts', str(sts))
        T.check(sts[-1] == 429, 'then 429', str(sts))
        st, doc = r.req('GET', '/fleet/leases?ips=10.0.0.1', headers=good)
        T.check(st == 429, 'the right token too, while the caller\'s bucket is empty', f'{doc}')
        T.check(wait_for(lambda: r.req('GET', '/fleet/peer', headers=good)[0] == 200, 10),
                'after the bucket refills the right token works again')
    finally:
        T.eq(r.stop(), 0, 'the replica stops cleanly')


def main():
    emu = Emu(os.path.join(BIN, 'r53emu'))
    pa, pb = free_port(), free_port()
    peers = [f'http://127.0.0.1:{pa}', f'http://127.0.0.1:{pb}']
    closed = free_port()  # nothing listens here: every check fails at once...
    healthy = []
    for ip in ('127.0.0.11', '127.0.0.12'):  # ...but on the lease test's backends
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((ip, closed))
        s.listen(4096)
        healthy.append(s)
    common = ['--resync-interval', '1', '--check', 'tcp', '--check-port', str(closed),
              '--check-interval-ms', '300', '--check-timeout-ms', '200', '--check-fall', '2',
              '--max-down-share', '1']
    a = b = None
    try:
        a = Replica(emu, pa, peers, *common)
        b = Replica(emu, pb, peers, *common)
        T.run('fleet_size', test_fleet_size, a, b)
        T.run('leases', test_leases, emu, a, b)
        T.run('health_split', test_health_split, emu, a, b)
        T.run('an unanswered peer is presumed at start', test_unanswered_peer_presumed, emu)
        T.run('a live peer that cannot answer about leases', test_unanswering_live_peer, emu)
        T.run('hung peer URLs do not make a healthy peer flap', test_hung_urls, emu)
        T.run('failed /fleet/ authentication is rate limited', test_fleet_auth_limited, emu)
    finally:
        for r in (a, b):
            if r:
                T.eq(r.stop(), 0, f'replica on {r.port} stops cleanly')
    try:
        # A and B are gone: nobody else checks what C and D are given.
        T.run('registered through a non-owner: checked there meanwhile', test_interim_checks,
              emu, common[2:])
    finally:
        emu.stop()
        for s in healthy:
            s.close()
    T.finish()


if __name__ == '__main__':
    reg_process.BIN = BIN
    main()
