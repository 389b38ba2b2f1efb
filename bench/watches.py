"""What parked watches cost and how fast one change reaches them.

r53reg on its embedded store; N watches (GET <path>?index=I&wait=5m) parked from 200 source
addresses (127.0.40.x-127.0.41.x, 64 connections each at most, the default per-address limit),
held by 2 reader processes with their own epoll each so the readers are not the bottleneck.
Then one registration; each reader notes when each answer arrived. Prints, per scenario: the
RSS of r53reg before, with the watches parked, and its peak; the time from the registration's
2xx to the first, median, 99th-percentile and last answer; how many answers were 200 with the
change. Scenario 'big' first registers --backends backends so every answer is a large body
(GET /buckets with 5,000 backends is about 100 KB): the answers share one rendered text.

Usage: /usr/bin/python3 bench/watches.py --bin BUILD/bin [--n 10000] [--backends 5000]
       [--path /buckets] [--scenario small|big|both]
"""
import argparse
import http.client
import json
import multiprocessing as mp
import os
import re
import resource
import select
import selectors
import socket
import subprocess
import sys
import tempfile
import time

READERS, ADDRS = 2, 200


def start(bin_dir):
    state = tempfile.mktemp(prefix='r53reg-watchbench-', suffix='.json')
    log = tempfile.NamedTemporaryFile(prefix='r53reg-watchbench-', suffix='.log', delete=False)
    p = subprocess.Popen([os.path.join(bin_dir, 'r53reg'), '--listen', '127.0.0.1:0',
                          '--provider', 'memory', '--state-file', state, '--client-rps', '0',
                          '--max-connections', '16000'],
                         stderr=log, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with open(log.name, 'rb') as f:
            m = re.search(rb'msg=listening listen=127\.0\.0\.1:(\d+)', f.read())
        if m:
            os.unlink(log.name)  # the process keeps writing to the unlinked file
            return p, int(m.group(1)), state
        time.sleep(0.05)
    p.kill()
    raise RuntimeError('r53reg did not start: ' + open(log.name).read())


def req(port, method, path, body=None, headers=None):
    c = http.client.HTTPConnection('127.0.0.1', port, timeout=120)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    return r.status, hdrs, data


def status_kb(pid, field):
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    return 0


def reader(port, path, index, first, count, ready, go, out, marker):
    """Park count watches (the first-th on), report ready, then read every answer."""
    resource.setrlimit(resource.RLIMIT_NOFILE, resource.getrlimit(resource.RLIMIT_NOFILE)[1:] * 2)
    sel, socks = selectors.DefaultSelector(), []
    request = f'GET {path}?index={index}&wait=5m HTTP/1.1\r\nHost: x\r\n\r\n'.encode()
    for i in range(first, first + count):
        a = i % ADDRS
        s = socket.socket()
        s.bind((f'127.0.{40 + a // 250}.{1 + a % 250}', 0))
        s.connect(('127.0.0.1', port))
        s.sendall(request)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, [bytearray(), None])
        socks.append(s)
        if i % 500 == 499:
            time.sleep(0.02)
    ready.put(count)
    go.wait()
    times, good, left = [], 0, count
    deadline = time.monotonic() + 120
    while left and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1):
            buf, length = key.data
            chunk = key.fileobj.recv(1 << 20)
            buf += chunk
            if length is None:
                head, sep, _ = bytes(buf[:4096]).partition(b'\r\n\r\n')
                if sep:
                    m = re.search(rb'(?i)content-length: *(\d+)', head)
                    key.data[1] = length = len(head) + 4 + int(m.group(1) if m else 0)
            if (length is not None and len(buf) >= length) or not chunk:
                times.append(time.monotonic())
                if buf.startswith(b'HTTP/1.1 200') and marker.encode() in buf:
                    good += 1
                sel.unregister(key.fileobj)  # kept open, as a watcher that asks again would
                left -= 1
    out.put((times, good))
    for s in socks:
        s.close()


def parked(port):
    _, _, text = req(port, 'GET', '/metrics')
    m = re.search(rb'^r53reg_http_watches_parked (\d+)', text, re.M)
    return int(m.group(1)) if m else -1


def run(bin_dir, n, path, backends, label):
    p, port, state = start(bin_dir)
    try:
        if backends:
            ips = [f'10.{1 + i // 62500}.{(i // 250) % 250}.{1 + i % 250}' for i in range(backends)]
            for k in range(0, backends, 10000):
                st, _, _ = req(port, 'POST', '/backends',
                               json.dumps({'backends': ips[k:k + 10000]}),
                               {'Content-Type': 'application/json'})
                assert st == 200, st
        _, h, body = req(port, 'GET', path)
        index = int(h['x-r53reg-index'])
        rss0 = status_kb(p.pid, 'VmRSS')
        ready, out, go = mp.Queue(), mp.Queue(), mp.Event()
        per = n // READERS
        procs = [mp.Process(target=reader, args=(port, path, index, k * per, per, ready, go, out,
                                                 '10.250.0.1')) for k in range(READERS)]
        t0 = time.monotonic()
        for pr in procs:
            pr.start()
        for _ in procs:
            ready.get()
        deadline = time.monotonic() + 60
        while parked(port) < per * READERS and time.monotonic() < deadline:
            time.sleep(0.1)
        t_park = time.monotonic() - t0
        rss1 = status_kb(p.pid, 'VmRSS')
        go.set()
        time.sleep(0.2)
        st, _, _ = req(port, 'POST', '/backends/10.250.0.1')
        t_ok = time.monotonic()
        times, good = [], 0
        for _ in procs:
            t, g = out.get()
            times += t
            good += g
        for pr in procs:
            pr.join()
        peak = status_kb(p.pid, 'VmHWM')
        lat = sorted((t - t_ok) * 1000 for t in times)

        def pct(q):
            return lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float('nan')
        print(f'{label}: {per * READERS} watches on {path} ({len(body)} bytes) from {ADDRS} '
              f'addresses parked in {t_park:.1f} s', flush=True)
        print(f'  RSS {rss0 / 1024:.1f} MB idle, {rss1 / 1024:.1f} MB parked '
              f'({(rss1 - rss0) / (per * READERS):.2f} KB per watch), peak {peak / 1024:.1f} MB',
              flush=True)
        print(f'  registration {st}; answers after its 2xx: first {lat[0]:.1f} ms, p50 '
              f'{pct(0.5):.1f} ms, p99 {pct(0.99):.1f} ms, last {lat[-1]:.1f} ms; '
              f'{good} of {len(lat)} were 200 with the change', flush=True)
    finally:
        p.terminate()
        p.wait(30)
        if os.path.exists(state):
            os.unlink(state)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--bin', required=True)
    ap.add_argument('--n', type=int, default=10000)
    ap.add_argument('--backends', type=int, default=5000)
    ap.add_argument('--path', default='/buckets')
    ap.add_argument('--scenario', default='both', choices=['small', 'big', 'both'])
    a = ap.parse_args()
    resource.setrlimit(resource.RLIMIT_NOFILE, resource.getrlimit(resource.RLIMIT_NOFILE)[1:] * 2)
    if a.scenario in ('small', 'both'):
        run(a.bin, a.n, a.path, 0, 'small')
    if a.scenario in ('big', 'both'):
        run(a.bin, a.n, a.path, a.backends, 'big')


if __name__ == '__main__':
    main()
