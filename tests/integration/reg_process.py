"""One r53reg process against the Route 53 emulator, for the integration tests and benches.

Moved out of test_route53.py unchanged in behaviour (test_route53, test_health, the benches
and tests/integration/replicas.py import it from here):

- Reg(emu, *extra, env_extra=None): r53reg on 127.0.0.1:0 with the test flags (--allow-special,
  --client-rps 0, --max-connections-per-ip 0, --api-rps 20, --api-change-rps 0, 4 buckets of
  50), extra flags appended (a later flag wins); .req(method, path, ...) -> (status, JSON or
  None); .stop() (SIGTERM, exit code; KEEP_LOG=1 prints the log); .log.name is the log file.
- ours(emu), zone_ips(emu), others(emu): the app.example.com sets, their values, the rest.
- burst(reg, ips, method, path_suffix): one thread per IP, {ip: (status, doc)}.
- metric_values(reg): the Route 53 families of /metrics.

BIN (the directory holding r53reg) is this module's global; importers that set
test_route53.BIN (the older way) are still honoured.
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
from emutest import ZONE  # noqa: E402

BIN = None  # set by importers (test_route53 sets it from argv)
NAME = 'app.example.com.'


def bin_dir():
    """BIN, or test_route53.BIN for importers that set that one."""
    if BIN:
        return BIN
    for mod in ('test_route53', '__main__'):
        b = getattr(sys.modules.get(mod), 'BIN', None)
        if isinstance(b, str) and b:
            return b
    raise RuntimeError('reg_process.BIN is not set (the directory holding r53reg)')


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
        args = [os.path.join(bin_dir(), 'r53reg'), '--provider', 'route53', '--zone-id', ZONE,
                '--aws-endpoint', emu.endpoint, '--listen', '127.0.0.1:0',
                '--record-name', 'app.example.com', '--buckets', '4', '--max-per-bucket', '50',
                '--api-rps', '20',
                # The emulator has no change bucket unless a test gives it one.
                '--api-change-rps', '0',
                # Every request of these tests comes from 127.0.0.1: no per-client limits.
                '--client-rps', '0', '--max-connections-per-ip', '0',
                # test_health and the benchmarks register 127.x backends through this class.
                '--allow-special']
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

    def req(self, method, path, body=None, timeout=120, headers=None):
        conn = http.client.HTTPConnection('127.0.0.1', self.port, timeout=timeout)
        conn.request(method, path, body=body, headers=headers or {})
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
        if line.startswith('r53reg_route53_') or line.startswith('r53reg_upstream_'):
            name, _, value = line.rpartition(' ')
            out[name] = float(value)
    return out
