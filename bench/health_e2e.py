#!/usr/bin/env python3
"""health_e2e.py: what health checking costs r53reg at fleet size, end to end.

Starts r53reg (memory store) with --check tcp on a port P, opens N listeners (default 10,000)
on 127.1.x.y:P that accept and close, registers all N with one bulk POST, waits until every
backend has been checked, then:
- samples r53reg's own CPU time (utime + stime of the process, /proc/PID/stat) over --seconds,
  as a percentage of one core, with the checks per second from /metrics over the same window;
- closes one listener and times how long until GET /backends/{ip} says "down" and the store no
  longer serves it (detection-to-DNS: fall x interval, plus up to one interval until the first
  failing check, plus one commit), then reopens it and times the way back (rise x interval);
- prints r53reg_health_detection_to_dns_seconds (verdict to commit) from /metrics.

With --route53, r53reg writes to the strict Route 53 emulator (tests/r53emu) throttled like
the real API (5 calls/s, r53reg --api-rps 5) instead of its embedded store. With --kill K, K
listeners are then closed at once (a rack failing) and the time until all K are out of DNS,
and back after they reopen, is printed with the ChangeResourceRecordSets calls it took.

Usage: health_e2e.py BIN_DIR [--n 10000] [--seconds 30] [--interval-ms 5000] [--fall 3]
                             [--rise 2] [--route53] [--kill K]
Only 127.0.0.0/8 addresses are used. Not a test: it prints numbers.
"""
import argparse
import http.client
import json
import os
import re
import resource
import selectors
import socket
import subprocess
import sys
import tempfile
import threading
import time

PORT = 18443


def call(port, method, path, body=None):
    c = http.client.HTTPConnection('127.0.0.1', port, timeout=60)
    headers = {'Content-Type': 'application/json'} if body is not None else {}
    c.request(method, path, body=json.dumps(body) if body is not None else None,
              headers=headers)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def metric(port, name):
    _, text = call(port, 'GET', '/metrics')
    total = 0.0
    for line in text.decode().splitlines():
        if line.startswith(name) and not line.startswith('#'):
            total += float(line.rsplit(' ', 1)[1])
    return total


def cpu_seconds(pid):
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def listener_ip(i):
    """The address of listener i: 127.1.x.y."""
    return '127.1.%d.%d' % (i // 250, i % 250 + 1)


class Listeners:
    """N listening sockets on 127.1.x.y:PORT, accepted and closed on one thread."""

    def __init__(self, n):
        self.sel = selectors.DefaultSelector()
        self.socks = {}
        self.ips = []
        for i in range(n):
            ip = listener_ip(i)
            self.ips.append(ip)
            self.open(ip)
        self.stop = False
        self.accepted = 0  # connections accepted so far (read by bench/health_haproxy.py)
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def open(self, ip):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((ip, PORT))
        s.listen(64)
        s.setblocking(False)
        self.socks[ip] = s
        self.sel.register(s, selectors.EVENT_READ)

    def close(self, ip):
        s = self.socks.pop(ip)
        self.sel.unregister(s)
        s.close()

    def run(self):
        while not self.stop:
            for key, _ in self.sel.select(timeout=0.2):
                try:
                    c, _ = key.fileobj.accept()
                    c.close()
                    self.accepted += 1
                except OSError:
                    pass


def r53reg_args(bin_dir, interval_ms, fall, rise, timeout_ms=1000):
    """r53reg's command line: embedded store, TCP checks of PORT on every registered backend."""
    return [os.path.join(bin_dir, 'r53reg'), '--listen', '127.0.0.1:0', '--buckets', '100',
            '--max-per-bucket', '400', '--check', 'tcp', '--check-port', str(PORT),
            '--check-interval-ms', str(interval_ms), '--check-timeout-ms', str(timeout_ms),
            '--check-fall', str(fall), '--check-rise', str(rise),
            '--client-rps', '0', '--max-connections-per-ip', '0', '--max-body', '4194304',
            '--log-level', 'info', '--allow-special']  # the listeners are 127.1.x.y


def start_r53reg(args, env, log_prefix):
    """Start r53reg; return (process, its HTTP port, the log file its stderr is copied to)."""
    log = tempfile.NamedTemporaryFile(prefix=log_prefix, suffix='.log', delete=False)
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env)
    port = None
    buf = b''
    deadline = time.time() + 20
    while port is None and time.time() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        buf += line
        m = re.search(rb'msg=listening listen=127\.0\.0\.1:(\d+)', line)
        if m:
            port = int(m.group(1))
    if port is None:
        proc.kill()
        sys.exit('r53reg did not start:\n' + buf.decode(errors='replace'))
    threading.Thread(target=lambda: [log.write(l) for l in proc.stderr], daemon=True).start()
    return proc, port, log


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('bin')
    ap.add_argument('--n', type=int, default=10000)
    ap.add_argument('--seconds', type=int, default=30)
    ap.add_argument('--interval-ms', type=int, default=5000)
    ap.add_argument('--fall', type=int, default=3)
    ap.add_argument('--rise', type=int, default=2)
    ap.add_argument('--route53', action='store_true')
    ap.add_argument('--kill', type=int, default=0)
    a = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if a.n + 200 > hard:
        a.n = hard - 200
        print('fd limit %d: using %d listeners' % (hard, a.n))

    args = r53reg_args(a.bin, a.interval_ms, a.fall, a.rise)
    env = dict(os.environ)
    emu = None
    if a.route53:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..',
                                        'tests', 'r53emu'))
        from emutest import Emu, ZONE
        emu = Emu(os.path.join(a.bin, 'r53emu'), '--rate', '5', '--burst', '5')
        args += ['--provider', 'route53', '--zone-id', ZONE, '--aws-endpoint', emu.endpoint,
                 '--api-rps', '5']
        env.update({'AWS_ACCESS_KEY_ID': emu.akid, 'AWS_SECRET_ACCESS_KEY': emu.secret,
                    'AWS_EC2_METADATA_DISABLED': 'true'})
    proc, port, log = start_r53reg(args, env, 'health-e2e-')

    try:
        t0 = time.time()
        lis = Listeners(a.n)
        print('listeners: %d on 127.1.x.y:%d (%.1f s to open)' % (a.n, PORT, time.time() - t0))
        t0 = time.time()
        status, _ = call(port, 'POST', '/backends', {'backends': lis.ips})
        print('registered: %d backends in one bulk POST, status %d, %.2f s' %
              (a.n, status, time.time() - t0))
        # Every backend checked at least once (the first checks are spread over an interval).
        time.sleep(a.interval_ms / 1000 * 1.5)
        c0, k0, f0, t0 = (cpu_seconds(proc.pid), metric(port, 'r53reg_health_checks_total'),
                          metric(port, 'r53reg_health_checks_total{result="fail"}'),
                          time.time())
        time.sleep(a.seconds)
        c1, k1, f1, t1 = (cpu_seconds(proc.pid), metric(port, 'r53reg_health_checks_total'),
                          metric(port, 'r53reg_health_checks_total{result="fail"}'),
                          time.time())
        wall = t1 - t0
        print('steady state over %.1f s: %.0f checks/s, %d failed, r53reg CPU %.1f%% of one '
              'core (process total: checker, reconciler scans, HTTP)' %
              (wall, (k1 - k0) / wall, f1 - f0, 100 * (c1 - c0) / wall))

        victim = lis.ips[len(lis.ips) // 2]
        lis.close(victim)
        t_close = time.time()
        down_at = None
        while time.time() - t_close < (a.fall + 2) * a.interval_ms / 1000 + 10:
            _, body = call(port, 'GET', '/backends/' + victim)
            if json.loads(body).get('state') == 'down':
                down_at = time.time()
                break
            time.sleep(0.02)
        bound = (a.fall + 1) * a.interval_ms / 1000
        if down_at is None:
            print('detection-to-DNS: %s never went down' % victim)
        else:
            print('detection-to-DNS (listener closed -> out of the served set): %.2f s '
                  '(fall %d x interval %.1f s, plus up to one interval: at most %.1f s)' %
                  (down_at - t_close, a.fall, a.interval_ms / 1000, bound))
        lis.open(victim)
        t_open = time.time()
        up_at = None
        while time.time() - t_open < (a.rise + 2) * a.interval_ms / 1000 + 10:
            _, body = call(port, 'GET', '/backends/' + victim)
            if json.loads(body).get('state') == 'registered':
                up_at = time.time()
                break
            time.sleep(0.02)
        if up_at is not None:
            print('recovery (listener reopened -> served again): %.2f s (rise %d x interval)' %
                  (up_at - t_open, a.rise))
        if a.kill:
            calls = 'r53reg_route53_calls_total{call="change_rrsets"'
            victims = [ip for ip in lis.ips[::max(1, len(lis.ips) // a.kill)]][:a.kill]
            c0 = metric(port, calls)
            for ip in victims:
                lis.close(ip)
            t_close = time.time()
            first = last = None
            while time.time() - t_close < (a.fall + 2) * a.interval_ms / 1000 + 120:
                down = metric(port, 'r53reg_backends_down')
                if down and first is None:
                    first = time.time()
                if down >= len(victims):
                    last = time.time()
                    break
                time.sleep(0.05)
            c1 = metric(port, calls)
            if last is None:
                print('mass failure: only %d of %d went down' % (down, len(victims)))
            else:
                print('mass failure: %d listeners closed at once: first out of DNS after %.2f s, '
                      'all %d out after %.2f s, %d ChangeResourceRecordSets calls' %
                      (len(victims), first - t_close, len(victims), last - t_close, c1 - c0))
            for ip in victims:
                lis.open(ip)
            t_open = time.time()
            back = None
            while time.time() - t_open < (a.rise + 2) * a.interval_ms / 1000 + 120:
                if metric(port, 'r53reg_backends_down') == 0:
                    back = time.time()
                    break
                time.sleep(0.05)
            if back is not None:
                print('mass recovery: all %d served again after %.2f s, %d calls' %
                      (len(victims), back - t_open, metric(port, calls) - c1))
        f = metric(port, 'r53reg_health_failure_to_dns_seconds_count')
        if f:
            print('first failing (or passing) check to commit '
                  '(r53reg_health_failure_to_dns_seconds): %d moves, mean %.2f s' %
                  (f, metric(port, 'r53reg_health_failure_to_dns_seconds_sum') / f))
        n = metric(port, 'r53reg_health_detection_to_dns_seconds_count')
        s = metric(port, 'r53reg_health_detection_to_dns_seconds_sum')
        if n:
            print('verdict-to-commit (r53reg_health_detection_to_dns_seconds): %d moves, mean '
                  '%.2f ms' % (n, 1000 * s / n))
        _, body = call(port, 'GET', '/buckets')
        totals = json.loads(body)['totals']
        print('totals: %s' % json.dumps(totals))
        _, st = call(port, 'GET', '/metrics')
        rss = open('/proc/%d/status' % proc.pid).read()
        print('r53reg %s' % re.search(r'VmHWM:\s+(\d+ kB)', rss).group(0))
    finally:
        proc.terminate()
        proc.wait()
        if emu:
            emu.stop()
        print('r53reg log: %s' % log.name)


if __name__ == '__main__':
    main()
