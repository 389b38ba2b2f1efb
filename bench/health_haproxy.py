#!/usr/bin/env python3
"""health_haproxy.py: r53reg's TCP health checks against HAProxy's, side by side in one run.

One process (a child of this script, its CPU counted for neither) opens N listeners (default
10,000) on 127.1.x.y:P that accept and close (bench/health_e2e.py's Listeners). Against these
same listeners, at the same time:
- r53reg (embedded memory store, --check tcp --check-port P, interval/fall/rise as given,
  timeout 1 s; bench/health_e2e.py's command line) with all N registered in one bulk POST;
- HAProxy (the Debian package, 2.6; scripts/install-deps.sh --bench installs it when missing),
  `nbthread 1`, one backend of N `server sK 127.1.x.y:P check inter 5s fall 3 rise 2` lines,
  connect and check timeouts of 1 s, no frontend, its stats on a Unix socket only.
Once both have had time for a full round of checks (1.5 intervals after the later start), the
CPU time of each process (utime + stime, /proc/PID/stat, all threads) is sampled over the same
window of --seconds and printed as a percentage of one core, with the ratio r53reg / HAProxy.
Checks per second: r53reg's from its /metrics over the window. HAProxy keeps no count of
passed checks and does not complete a TCP check's handshake (SYN, SYN-ACK, RST: the listeners
never accept its connections), so right after the window both processes' connect() calls are
counted for one interval with `perf stat -e syscalls:sys_enter_connect` (one connect per check; 'n/a' without
perf); this count is kept out of the CPU window because tracing syscalls slows them. Failed
checks (r53reg's metrics, HAProxy's chkfail), the listeners' accepts and the sockets in
TIME_WAIT to or from port P at the end of the window (both close their check connections with
a reset, so about 0) are printed as sanity checks.

--runs K repeats the measurement with a fresh r53reg and HAProxy each time (the listeners stay)
and ends with the min and median of each figure.

Usage: health_haproxy.py BIN_DIR [--n 10000] [--seconds 40] [--interval-ms 5000] [--fall 3]
                                 [--rise 2] [--runs 3]
Only 127.0.0.0/8 addresses are used. Not a test: it prints numbers.
"""
import argparse
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import health_e2e
from health_e2e import PORT, call, cpu_seconds, metric

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')


def serve_listeners(n):
    """The listeners process: open them, say so, answer 'count' with the accepts so far."""
    lis = health_e2e.Listeners(n)
    sys.stdout.write('ready %d\n' % len(lis.ips))
    sys.stdout.flush()
    for line in sys.stdin:
        if line.strip() == 'count':
            sys.stdout.write('%d\n' % lis.accepted)
            sys.stdout.flush()


class ListenerProcess:
    def __init__(self, n):
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__),
                                      '--serve-listeners', str(n)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith('ready'):
            sys.exit('the listeners process did not start')
        self.ips = [health_e2e.listener_ip(i) for i in range(n)]

    def accepted(self):
        self.proc.stdin.write('count\n')
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait()


def haproxy_bin():
    """HAProxy's path, installed first (as scripts/bench.sh does) when it is missing."""
    path = shutil.which('haproxy')
    if path is None:
        subprocess.check_call([os.path.join(ROOT, 'scripts', 'install-deps.sh'), '--bench'])
        path = shutil.which('haproxy')
    if path is None:
        sys.exit('haproxy is not installed (scripts/install-deps.sh --bench)')
    return path


def haproxy_config(ips, interval_ms, fall, rise, sock):
    lines = ['global',
             '    nbthread 1',
             '    maxconn 1000',
             '    stats socket %s mode 600' % sock,
             'defaults',
             '    mode tcp',
             '    timeout connect 1s',
             '    timeout check 1s',
             '    timeout client 30s',
             '    timeout server 30s',
             'backend checks']
    lines += ['    server s%d %s:%d check inter %dms fall %d rise %d' %
              (i, ip, PORT, interval_ms, fall, rise) for i, ip in enumerate(ips)]
    return '\n'.join(lines) + '\n'


def count_connects(pids, seconds):
    """connect() calls of each pid over the next seconds (perf stat), or None without perf."""
    perf = shutil.which('perf')
    if perf is None:
        return [None for _ in pids]
    procs = [subprocess.Popen([perf, 'stat', '-x', ',', '-e', 'syscalls:sys_enter_connect',
                               '-p', str(pid), '--', 'sleep', str(seconds)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for pid in pids]
    out = []
    for p in procs:
        _, err = p.communicate()
        n = None
        for line in err.splitlines():
            f = line.split(',')
            if len(f) > 2 and 'sys_enter_connect' in f[2] and f[0].strip().isdigit():
                n = int(f[0])
        out.append(n)
    return out


def haproxy_stats(sock):
    """(servers UP, sum of chkfail) from 'show stat' on the stats socket."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(sock)
    s.sendall(b'show stat -1 4 -1\n')
    data = b''
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    rows = data.decode().splitlines()
    head = rows[0].lstrip('# ').split(',')
    st, chkfail = head.index('status'), head.index('chkfail')
    up = fails = 0
    for r in rows[1:]:
        f = r.split(',')
        if len(f) <= chkfail:
            continue
        up += f[st] == 'UP'
        fails += int(f[chkfail] or 0)
    return up, fails


def time_wait_sockets():
    """Sockets in TIME_WAIT to or from the listeners' port (the machine may hold others')."""
    n = 0
    port = ':%04X' % PORT
    for name in ('/proc/net/tcp', '/proc/net/tcp6'):
        with open(name) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] == '06' and (fields[1].endswith(port) or fields[2].endswith(port)):
                    n += 1
    return n


def one_run(a, lis, haproxy, workdir):
    proc, port, log = health_e2e.start_r53reg(
        health_e2e.r53reg_args(a.bin, a.interval_ms, a.fall, a.rise), dict(os.environ),
        'health-haproxy-')
    hap = None
    try:
        status, _ = call(port, 'POST', '/backends', {'backends': lis.ips})
        if status != 200:
            sys.exit('bulk registration failed: %d' % status)
        sock = os.path.join(workdir, 'haproxy.sock')
        cfg = os.path.join(workdir, 'haproxy.cfg')
        with open(cfg, 'w') as f:
            f.write(haproxy_config(lis.ips, a.interval_ms, a.fall, a.rise, sock))
        hlog = open(os.path.join(workdir, 'haproxy.log'), 'w')
        hap = subprocess.Popen([haproxy, '-db', '-f', cfg], stdout=hlog, stderr=hlog)
        # A full round of both (each spreads its first checks over one interval).
        time.sleep(a.interval_ms / 1000 * 1.5)
        if hap.poll() is not None:
            sys.exit('haproxy exited: see %s' % hlog.name)
        _, hf0 = haproxy_stats(sock)
        k0 = metric(port, 'r53reg_health_checks_total')
        f0 = metric(port, 'r53reg_health_checks_total{result="fail"}')
        acc0 = lis.accepted()
        r0, h0, t0 = cpu_seconds(proc.pid), cpu_seconds(hap.pid), time.time()
        time.sleep(a.seconds)
        r1, h1, t1 = cpu_seconds(proc.pid), cpu_seconds(hap.pid), time.time()
        acc1 = lis.accepted()
        k1 = metric(port, 'r53reg_health_checks_total')
        f1 = metric(port, 'r53reg_health_checks_total{result="fail"}')
        hup, hf1 = haproxy_stats(sock)
        tw = time_wait_sockets()
        count_s = max(1, round(a.interval_ms / 1000))
        rc, hc = count_connects([proc.pid, hap.pid], count_s)
        wall = t1 - t0
        r = {'r53reg': 100 * (r1 - r0) / wall, 'haproxy': 100 * (h1 - h0) / wall,
             'r53reg_cps': (k1 - k0) / wall,
             'r53reg_connects': rc / count_s if rc is not None else None,
             'haproxy_connects': hc / count_s if hc is not None else None,
             'accepts': acc1 - acc0, 'r53reg_fail': f1 - f0, 'haproxy_fail': hf1 - hf0,
             'haproxy_up': hup, 'time_wait': tw, 'wall': wall}
        r['ratio'] = r['r53reg'] / r['haproxy'] if r['haproxy'] else float('inf')
        return r
    finally:
        if hap is not None:
            hap.terminate()
            hap.wait()
        proc.terminate()
        proc.wait()
        log.close()


def rate(v):
    return 'n/a' if v is None else '%.0f' % v


def main():
    if len(sys.argv) == 3 and sys.argv[1] == '--serve-listeners':
        serve_listeners(int(sys.argv[2]))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument('bin')
    ap.add_argument('--n', type=int, default=10000)
    ap.add_argument('--seconds', type=int, default=40)
    ap.add_argument('--interval-ms', type=int, default=5000)
    ap.add_argument('--fall', type=int, default=3)
    ap.add_argument('--rise', type=int, default=2)
    ap.add_argument('--runs', type=int, default=1)
    a = ap.parse_args()

    haproxy = haproxy_bin()
    version = subprocess.run([haproxy, '-v'], capture_output=True, text=True).stdout
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by the children
    if a.n + 1000 > hard:
        a.n = hard - 1000
        print('fd limit %d: using %d listeners' % (hard, a.n))
    print('%s; r53reg from %s' % (version.splitlines()[0], a.bin))
    t0 = time.time()
    lis = ListenerProcess(a.n)
    print('listeners: %d on 127.1.x.y:%d in a separate process (%.1f s to open)' %
          (a.n, PORT, time.time() - t0))
    print('checks: TCP every %d ms, timeout 1000 ms, fall %d, rise %d; window %d s' %
          (a.interval_ms, a.fall, a.rise, a.seconds))
    results = []
    with tempfile.TemporaryDirectory(prefix='health-haproxy-') as workdir:
        try:
            for i in range(a.runs):
                r = one_run(a, lis, haproxy, workdir)
                results.append(r)
                print('run %d (%.1f s): r53reg %.2f%% of one core (%.0f checks/s, %s connects/s, '
                      '%d failed), HAProxy %.2f%% (%s connects/s, %d failed, %d of %d UP), '
                      'ratio r53reg/HAProxy %.2f; listener accepts %d, TIME_WAIT sockets %d' %
                      (i + 1, r['wall'], r['r53reg'], r['r53reg_cps'], rate(r['r53reg_connects']),
                       r['r53reg_fail'], r['haproxy'], rate(r['haproxy_connects']),
                       r['haproxy_fail'], r['haproxy_up'], a.n, r['ratio'], r['accepts'],
                       r['time_wait']), flush=True)
        finally:
            lis.stop()
    if len(results) > 1:
        def mm(k):
            v = [r[k] for r in results]
            return min(v), statistics.median(v)
        print('over %d runs (min / median): r53reg %.2f / %.2f%%, HAProxy %.2f / %.2f%%, '
              'ratio %.2f / %.2f' % ((len(results),) + mm('r53reg') + mm('haproxy') +
                                     mm('ratio')))


if __name__ == '__main__':
    main()
