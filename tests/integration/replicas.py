"""A fleet of r53reg replicas on one emulator zone: the harness of test_replicas / bench/replicas.

Users run two or three replicas behind a load balancer "with the same flags" (README, issue 12);
this module starts them that way and gives the tests and the bench what they look at.

    emu = start_emu(bin_dir, rate=5)            # r53emu, throttled like an account (5 calls/s)
    fleet = Fleet(emu, 2, '--resync-interval', '2', peers=False, bin_dir=bin_dir)
    rr = RoundRobin(fleet, sources=SOURCES)     # each request to the next replica
    status, doc, k = rr.req('POST', '/backends/10.20.0.1')   # k: the replica that answered
    out = rr.many([('POST', '/backends/' + ip) for ip in ips])   # concurrently, in order
    buckets(emu), duplicates(emu), zone_ips(emu)                 # the zone, read from r53emu
    stats(emu) / reset_stats(emu)                                # emulator calls, Throttling
    fleet.kill9(0); fleet.stop()

- Fleet(emu, n, *flags, peers=False, defaults=True, bin_dir=None): n r53reg processes
  (reg_process.Reg) with the same flags. Reg passes test flags (--api-rps 20, --buckets 4,
  --max-per-bucket 50, --api-change-rps 0, --client-rps 0, --max-connections-per-ip 0); with
  defaults=True (the default) the fleet puts r53reg's own defaults back for those (read from
  `r53reg --help`), so the replicas run as users run them; `flags` come last and win.
  --allow-special stays (it only widens what may be registered; the harness registers
  10.x and 2001:db8::/32). With peers=True every replica gets `--listen 127.0.0.1:P_i`,
  `--peers http://127.0.0.1:P1,...,http://127.0.0.1:PN` (every replica, itself included) and
  `--peer-token <32 characters>`; supports_peers(bin_dir) says whether the binary has
  --peers (grep of --help) and Fleet raises Unsupported when it does not.
- RoundRobin: one request per call, each to the next live-or-not replica (a killed replica's
  share answers -1, a transport error), from source address sources[i % len] when given
  (127.0.2.x by default in the tests: r53reg limits mutations and connections per caller
  address, and a load balancer's clients are many). many() runs a list of requests on a
  thread pool (default 64 at once) and returns [(status, doc, replica)] in the list's order;
  to(k, ...) sends to one replica.
- Zone readers use the emulator's control API (never the signed API, so they cost no calls
  and are never throttled): buckets() {set_identifier/type: [values]} of app.example.com,
  duplicates() {ip: [buckets]} for IPs held by more than one set.
- stats(): the emulator's counters ({'calls': {action: {outcome: n}}, 'throttled', ...}),
  calls_total(stats) the sum of every call.
- log_lines(reg, needle): the lines of one replica's log holding needle (a failing case
  prints them; KEEP_LOG=1 prints every log at stop).

Loopback only: the emulator and the replicas listen on 127.0.0.1, clients bind 127.0.2.x.
"""
import concurrent.futures
import http.client
import itertools
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'r53emu'))
sys.path.insert(0, HERE)
from emutest import Emu, ZONE  # noqa: E402,F401
import reg_process  # noqa: E402

NAME = 'app.example.com.'
PREFIX = 'app.example.com_'
# Client source addresses: 250 callers, so per-address limits (--client-rps 20, burst 40;
# --max-connections-per-ip 64) see a load balancer's many clients, not one.
SOURCES = ['127.0.2.%d' % i for i in range(1, 251)]
# The flags reg_process.Reg sets for single-process tests, which a fleet puts back to r53reg's
# defaults (a user's replicas run with the defaults).
REG_TEST_FLAGS = ('--buckets', '--max-per-bucket', '--api-rps', '--api-change-rps',
                  '--client-rps', '--max-connections-per-ip')


class Unsupported(Exception):
    """The binary lacks a feature a case needs (the reason is the message)."""


def help_text(bin_dir):
    out = subprocess.run([os.path.join(bin_dir, 'r53reg'), '--help'], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, timeout=30)
    return out.stdout.decode(errors='replace')


def supports_peers(bin_dir):
    # An option line that starts with --peers (not "--trusted-proxy ... peers whose ...").
    return re.search(r'^\s*--peers\b', help_text(bin_dir), re.M) is not None


def default_flags(bin_dir):
    """['--buckets', '100', ...]: r53reg's defaults for the flags Reg overrides."""
    text = help_text(bin_dir)
    out = []
    for flag in REG_TEST_FLAGS:
        m = re.search(r'^\s*' + re.escape(flag) + r' \S+ .*\[([^\]]+)\] \(R53REG_', text, re.M)
        if not m:
            raise RuntimeError(f'no default for {flag} in r53reg --help')
        out += [flag, m.group(1)]
    return out


def free_ports(n):
    """n distinct free TCP ports on 127.0.0.1 (held together, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(('127.0.0.1', 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def start_emu(bin_dir, rate=5, *extra):
    """r53emu throttled like an account: `rate` calls/s, burst `rate` (0: unthrottled)."""
    args = ['--insync-after-ms', '50']
    if rate:
        args += ['--rate', '%g' % rate, '--burst', '%g' % max(1, rate)]
    return Emu(os.path.join(bin_dir, 'r53emu'), *args, *extra)


def fresh_zone(emu, rate=5):
    """An empty zone, no faults, the account's rate again, counters at zero."""
    emu.reset()
    if rate:
        emu.faults(rate=rate, burst=max(1, rate))
    emu.control('POST', 'reset-stats')


class Fleet:
    def __init__(self, emu, n, *flags, peers=False, defaults=True, bin_dir=None):
        self.bin_dir = bin_dir or reg_process.bin_dir()
        reg_process.BIN = reg_process.BIN or self.bin_dir
        self.emu = emu
        self.flags = (default_flags(self.bin_dir) if defaults else []) + list(flags)
        self.peers = peers
        self.token = None
        per = [[] for _ in range(n)]
        if peers:
            if not supports_peers(self.bin_dir):
                raise Unsupported('r53reg --help has no --peers (replicas that know each '
                                  'other are not in this binary)')
            ports = free_ports(n)
            self.token = secrets.token_hex(16)  # 32 characters
            urls = ','.join(f'http://127.0.0.1:{p}' for p in ports)
            per = [['--listen', f'127.0.0.1:{p}', '--peers', urls, '--peer-token', self.token]
                   for p in ports]
        self.regs = []
        self.killed = set()
        try:
            for k in range(n):
                self.regs.append(reg_process.Reg(emu, *self.flags, *per[k]))
        except Exception:
            self.stop()
            raise

    def __len__(self):
        return len(self.regs)

    def __getitem__(self, k):
        return self.regs[k]

    def kill9(self, k):
        reg = self.regs[k]
        reg.proc.send_signal(signal.SIGKILL)
        reg.proc.wait()
        self.killed.add(k)

    def stop(self):
        """SIGTERM every live replica: {k: exit code} (a killed one: -9)."""
        rcs = {}
        for k, reg in enumerate(self.regs):
            if k in self.killed:
                reg.drain.join(5)
                if os.environ.get('KEEP_LOG'):
                    print(open(reg.log.name, errors='replace').read())
                try:
                    os.unlink(reg.log.name)
                except OSError:
                    pass
                rcs[k] = -9
            else:
                rcs[k] = reg.stop()
        return rcs


def log_lines(reg, needle, limit=20):
    reg.log.flush()
    try:
        with open(reg.log.name, errors='replace') as f:
            lines = [ln.rstrip('\n') for ln in f if needle in ln]
    except OSError:
        return []
    return lines[-limit:]


class RoundRobin:
    """Each request to the next replica, as a round-robin load balancer sends them."""

    def __init__(self, fleet, sources=None, timeout=120):
        self.fleet = fleet
        self.sources = list(sources or [])
        self.timeout = timeout
        self.turn = itertools.count()
        self.src_turn = itertools.count()
        self.lock = threading.Lock()

    def _next(self, counter):
        with self.lock:
            return next(counter)

    def to(self, k, method, path, body=None, headers=None, source=None):
        """One request to replica k: (status, doc); a transport error is (-1, {'error'})."""
        reg = self.fleet[k]
        if source is None and self.sources:
            source = self.sources[self._next(self.src_turn) % len(self.sources)]
        kw = {'source_address': (source, 0)} if source else {}
        try:
            conn = http.client.HTTPConnection('127.0.0.1', reg.port, timeout=self.timeout, **kw)
            hdrs = dict(headers or {})
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
                hdrs.setdefault('Content-Type', 'application/json')
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            conn.close()
        except (OSError, http.client.HTTPException) as e:
            return -1, {'error': f'{type(e).__name__}: {e}'}
        try:
            doc = json.loads(data)
        except ValueError:
            doc = None
        return resp.status, doc

    def req(self, method, path, body=None, headers=None):
        """(status, doc, replica index) of one request to the next replica."""
        k = self._next(self.turn) % len(self.fleet)
        st, doc = self.to(k, method, path, body, headers)
        return st, doc, k

    def many(self, reqs, workers=64):
        """reqs: [(method, path[, body])] or [(k, method, path[, body])] with k a replica
        index: run them at once (at most `workers` in flight); [(status, doc, replica)] in
        the order given."""
        def one(r):
            if isinstance(r[0], int):
                k, method, path = r[:3]
                body = r[3] if len(r) > 3 else None
                st, doc = self.to(k, method, path, body)
                return st, doc, k
            method, path = r[:2]
            return self.req(method, path, r[2] if len(r) > 2 else None)
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as ex:
            return list(ex.map(one, reqs))


# --- the zone, as the emulator holds it (control API: no calls counted, never throttled) ----
def buckets(emu):
    """{'app.example.com_N/A': [values]} of r53reg's weighted sets."""
    out = {}
    for rs in emu.rrsets():
        if rs['name'] == NAME and rs.get('set_identifier', '').startswith(PREFIX):
            out[rs['set_identifier'] + '/' + rs['type']] = list(rs['values'])
    return out


def zone_ips(emu):
    """Every value of r53reg's sets, a copy per set (an IP in two buckets appears twice)."""
    return [ip for values in buckets(emu).values() for ip in values]


def duplicates(emu):
    """{ip: [buckets]} of every IP held by more than one set."""
    where = {}
    for sid, values in buckets(emu).items():
        for ip in values:
            where.setdefault(ip, []).append(sid)
    return {ip: sids for ip, sids in where.items() if len(sids) > 1}


def write_sets(emu, sets):
    """Direct write ("a person in the console"): sets = {n: [values]} as app.example.com_n A
    records, weight = number of values, TTL 60."""
    st, body = emu.control('POST', f'zones/{ZONE}/rrsets', {'upsert': [
        {'name': 'app.example.com', 'type': 'A', 'ttl': 60, 'weight': len(values),
         'set_identifier': f'{PREFIX}{n}', 'values': list(values)}
        for n, values in sets.items()]})
    if st != 200:
        raise RuntimeError(f'direct write: {st} {body}')


def stats(emu):
    return emu.control('GET', 'stats')[1]


def reset_stats(emu):
    emu.control('POST', 'reset-stats')


def calls_total(st):
    return sum(sum(v.values()) for v in st['calls'].values())


def codes(results):
    """{status: count} of [(status, doc, replica)]."""
    out = {}
    for r in results:
        out[r[0]] = out.get(r[0], 0) + 1
    return dict(sorted(out.items()))
