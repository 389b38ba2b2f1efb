"""Watches against the real r53reg on its embedded store: every read is labelled with
X-R53reg-Index and an ETag, If-None-Match answers 304, ?index=&wait= parks a request until a
change (and not before) or the end of the wait, a tag watch (If-None-Match + wait) parks while
the body is unchanged, bad watch parameters answer 400, a shutdown answers parked watches, and
10,000 watches parked from 200 source addresses are all answered after one change. Prints the
wake latencies and the memory 10,000 parked watches take (timing targets are the bench's).

Usage: test_watch.py BIN_DIR   (holds r53reg). Prints 'N passed, M failed' last.
"""
import http.client
import json
import os
import resource
import selectors
import socket
import sys
import tempfile
import threading
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', 'r53emu'))
import reg_process  # noqa: E402
from emutest import Tally  # noqa: E402

T = Tally()
NOEMU = types.SimpleNamespace(akid='unused', secret='unused', endpoint='http://127.0.0.1:9')


def start(*extra):
    state = tempfile.NamedTemporaryFile(prefix='r53reg-watch-', suffix='.json', delete=False)
    state.close()
    os.unlink(state.name)
    r = reg_process.Reg(NOEMU, '--provider', 'memory', '--state-file', state.name, *extra)
    r.state_file = state.name
    return r


def stop(r):
    rc = r.stop()
    if os.path.exists(r.state_file):
        os.unlink(r.state_file)
    return rc


def get(r, path, headers=None, timeout=60):
    """(status, headers as a lower-cased dict, body bytes, seconds taken)."""
    t0 = time.monotonic()
    c = http.client.HTTPConnection('127.0.0.1', r.port, timeout=timeout)
    c.request('GET', path, headers=headers or {})
    resp = c.getresponse()
    body = resp.read()
    c.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body, time.monotonic() - t0


def post(r, ip):
    st, _ = r.req('POST', '/backends/' + ip)
    return st


class Watch(threading.Thread):
    """A GET in the background; .done_at is when its answer arrived (monotonic)."""

    def __init__(self, r, path, headers=None):
        super().__init__(daemon=True)
        self.r, self.path, self.headers = r, path, headers
        self.result, self.done_at = None, None
        self.start()

    def run(self):
        self.result = get(self.r, self.path, self.headers)
        self.done_at = time.monotonic()


def index_of(h):
    return int(h['x-r53reg-index'])


def test_labels(r):
    post(r, '10.9.0.1')
    for path in ('/buckets', '/backends', '/backends/10.9.0.1', '/backends?detail=true'):
        st, h, body, _ = get(r, path)
        T.eq(st, 200, path)
        T.check('x-r53reg-index' in h and h['x-r53reg-index'].isdigit(), path + ' has an index',
                str(h))
        T.check(h.get('etag', '').startswith('"') and len(h.get('etag', '')) == 18,
                path + ' has a strong ETag', str(h))
        tag = h.get('etag', '')
        for inm in (tag, 'W/' + tag, '"0000000000000000", ' + tag, '*'):
            st2, h2, body2, _ = get(r, path, {'If-None-Match': inm})
            T.eq(st2, 304, f'{path} If-None-Match: {inm}')
            T.eq(body2, b'', f'{path} 304 has no body')
            T.eq(h2.get('etag'), tag, f'{path} 304 repeats the tag')
        st3, _, body3, _ = get(r, path, {'If-None-Match': '"0000000000000000"'})
        T.eq((st3, body3), (200, body), f'{path} another tag gets the body')
    st, h, _, _ = get(r, '/buckets')
    tag, ix = h['etag'], index_of(h)
    post(r, '10.9.0.2')
    st, h, _, _ = get(r, '/buckets', {'If-None-Match': tag})
    T.eq(st, 200, 'a change makes the old tag stale')
    T.check(index_of(h) > ix, 'the index moved on', f'{index_of(h)} <= {ix}')
    T.check(h['etag'] != tag, 'the tag changed')
    # /self is the caller's address: 127.0.0.1, here never registered.
    st, h, _, _ = get(r, '/backends/self')
    T.eq(st, 404, '/backends/self unregistered')
    T.check('x-r53reg-index' in h, 'a 404 still says its index')


def test_index_watch(r):
    st, h, _, _ = get(r, '/backends')
    ix = index_of(h)
    w = Watch(r, f'/backends?index={ix}&wait=30s')
    time.sleep(1.0)
    T.check(w.done_at is None, 'parked: no answer before the change')
    T.eq(post(r, '10.9.1.1'), 201, 'register')
    changed_at = time.monotonic()
    w.join(10)
    T.check(w.result is not None, 'answered after the change')
    if not w.result:
        return
    st, h, body, _ = w.result
    T.eq(st, 200, 'watch status')
    T.check(index_of(h) > ix, 'watch answer has a newer index', f'{index_of(h)} vs {ix}')
    T.check('10.9.1.1' in [b['ip'] for b in json.loads(body)['backends']],
            'watch answer shows the change')
    lat = (w.done_at - changed_at) * 1000
    T.check(lat < 5000, 'woken by the change, not by the wait', f'{lat:.0f} ms')
    print(f'    index watch answered {lat:.1f} ms after the registration\'s 2xx', flush=True)


def test_timeout(r):
    st, h, body, _ = get(r, '/buckets')
    ix = index_of(h)
    st, h2, body2, took = get(r, f'/buckets?index={ix}&wait=1s')
    T.eq(st, 200, 'timed-out watch answers 200')
    T.eq(index_of(h2), ix, 'same index after a timeout')
    T.eq(body2, body, 'same body after a timeout')
    T.check(1.0 <= took < 1.0 + 1 / 16 + 2, 'returns when the wait ends (plus jitter)',
            f'{took:.3f} s')
    st, _, _, took = get(r, f'/buckets?index={ix + 1000000}&wait=30s')
    T.check(st == 200 and took < 2, 'an index that is not the current one answers at once',
            f'{st} after {took:.3f} s')
    st, _, _, took = get(r, f'/buckets?index={ix}&wait=0')
    T.check(st == 200 and took < 2, 'wait=0 answers at once', f'{st} after {took:.3f} s')


def test_tag_watch(r):
    st, h, _, _ = get(r, '/backends')
    tag = h['etag']
    st, h2, body, took = get(r, '/backends?wait=1500ms', {'If-None-Match': tag})
    T.eq(st, 304, 'tag watch that timed out answers 304')
    T.check(took >= 1.5, 'tag watch waited', f'{took:.3f} s')
    w = Watch(r, '/backends?wait=30s', {'If-None-Match': tag})
    time.sleep(0.8)
    T.check(w.done_at is None, 'tag watch parked')
    # A change to something the body does not show (the TTL is in /buckets, not /backends)
    # would not wake it; a registration does.
    T.eq(post(r, '10.9.2.1'), 201, 'register')
    changed_at = time.monotonic()
    w.join(10)
    T.check(w.result is not None and w.result[0] == 200, 'tag watch answered 200 after the change',
            str(w.result and w.result[0]))
    if w.result:
        T.check(w.result[1]['etag'] != tag, 'with a new tag')
        print(f'    tag watch answered {(w.done_at - changed_at) * 1000:.1f} ms after the '
              'registration\'s 2xx', flush=True)


def test_tag_kept(r):
    """A tag watch whose body other changes leave alone stays parked through them (put back
    in the hub's list) and answers 304 when its own wait ends. (An IPv6 backend: IPv4
    registrations change the weight an IPv4 placement shows.)"""
    T.eq(post(r, '2001:db8::1'), 201, 'register an IPv6 backend')
    st, h, _, _ = get(r, '/backends/2001:db8::1')
    waits = [Watch(r, f'/backends/2001:db8::1?wait={ms}ms', {'If-None-Match': h['etag']})
             for ms in (2500, 1500, 2000)]
    time.sleep(0.3)
    for k in range(3):
        T.eq(post(r, f'10.9.4.{k + 1}'), 201, 'another registration')
        time.sleep(0.1)
    T.check(all(w.done_at is None for w in waits), 'unchanged tag watches stay parked')
    for w, ms in zip(waits, (2500, 1500, 2000)):
        w.join(10)
        took = w.result and w.result[3]
        T.check(w.result is not None and w.result[0] == 304 and
                ms / 1000 <= took < ms / 1000 + ms / 16000 + 1.5,
                f'the {ms} ms tag watch answers 304 when its wait ends',
                str(w.result and (w.result[0], took)))


def test_star(r):
    """If-None-Match: * with a wait parks until the body changes, then delivers it."""
    w = Watch(r, '/backends?wait=30s', {'If-None-Match': '*'})
    time.sleep(0.5)
    T.check(w.done_at is None, '* watch parked')
    T.eq(post(r, '10.9.2.2'), 201, 'register')
    w.join(10)
    T.check(w.result is not None and w.result[0] == 200 and b'10.9.2.2' in w.result[2],
            '* watch answered 200 with the new body', str(w.result and w.result[:1]))


def test_single(r):
    st, h, _, _ = get(r, '/backends/10.9.3.1')
    T.eq(st, 404, 'not yet registered')
    w = Watch(r, f'/backends/10.9.3.1?index={index_of(h)}&wait=30s')
    time.sleep(0.5)
    T.check(w.done_at is None, 'single-backend watch parked')
    post(r, '10.9.3.1')
    w.join(10)
    T.check(w.result is not None and w.result[0] == 200, 'answered 200 once registered',
            str(w.result and w.result[:3]))
    st, _ = r.req('POST', '/backends/10.9.3.2', body=json.dumps({'lease_seconds': 600}),
                  headers={'Content-Type': 'application/json'})
    T.eq(st, 201, 'register with a lease')
    st, _, body, _ = get(r, '/backends?detail=true')
    doc = {b['ip']: b for b in json.loads(body)['backends']}
    T.eq(doc.get('10.9.3.2', {}).get('lease_seconds'), 600, 'detail=true shows the lease')
    T.check('lease_expires_at' in doc.get('10.9.3.2', {}), 'and its deadline')
    st, _, body, _ = get(r, '/backends')
    doc = {b['ip']: b for b in json.loads(body)['backends']}
    T.check('lease_seconds' not in doc.get('10.9.3.2', {}), 'without detail no lease')


def test_bad(r):
    st, h, _, _ = get(r, '/backends')
    ix = index_of(h)
    for q in ('index=abc', 'index=-1', 'index=', f'index={ix}&wait=11m', f'index={ix}&wait=5x',
              'wait=soon', 'detail=maybe', 'index=99999999999999999999'):
        for path in ('/backends', '/buckets', '/backends/10.9.0.1', '/backends/self'):
            if 'detail' in q and path != '/backends':
                continue
            st, h2, body, took = get(r, f'{path}?{q}')
            ok = st == 400 and h2.get('content-type') == 'application/problem+json'
            T.check(ok and took < 2, f'{path}?{q} is refused at once', f'{st} {body[:120]!r}')


def test_shutdown(_):
    r = start()
    try:
        st, h, _, _ = get(r, '/buckets')
        w = Watch(r, f'/buckets?index={index_of(h)}&wait=5m')
        time.sleep(0.5)
        t0 = time.monotonic()
        rc = stop(r)
        w.join(10)
        T.eq(rc, 0, 'r53reg exits 0')
        T.check(w.result is not None and w.result[0] == 200,
                'a parked watch is answered 200 at shutdown', str(w.result and w.result[0]))
        T.check(time.monotonic() - t0 < 10, 'and the stop does not wait for the watch')
    finally:
        if r.proc.poll() is None:
            stop(r)


def rss_kb(pid):
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    return 0


def parked(r):
    st, _ = r.req('GET', '/healthz')
    c = http.client.HTTPConnection('127.0.0.1', r.port, timeout=10)
    c.request('GET', '/metrics')
    text = c.getresponse().read().decode()
    c.close()
    for line in text.splitlines():
        if line.startswith('r53reg_http_watches_parked '):
            return int(float(line.split()[1]))
    return -1


def test_ten_thousand(_):
    n, addrs = 10000, 200
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < n + 500:
        print(f'    SKIP: needs {n + 500} open files, the hard limit is {hard}', flush=True)
        return
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    # The defaults a deployment runs with: 64 connections per address.
    r = start('--max-connections-per-ip', '64', '--max-connections', '16000')
    socks = []
    sel = selectors.DefaultSelector()
    try:
        post(r, '10.9.9.1')
        st, h, _, _ = get(r, '/buckets')
        ix = index_of(h)
        rss0 = rss_kb(r.proc.pid)
        req = (f'GET /buckets?index={ix}&wait=120s HTTP/1.1\r\nHost: x\r\n\r\n').encode()
        t0 = time.monotonic()
        for i in range(n):
            a = i % addrs
            s = socket.socket()
            s.bind((f'127.0.{40 + a // 250}.{1 + a % 250}', 0))
            s.connect(('127.0.0.1', r.port))
            s.sendall(req)
            s.setblocking(False)
            socks.append(s)
            if i % 1000 == 999:
                time.sleep(0.05)  # arrivals over a moment, not one instant (somaxconn)
        deadline = time.monotonic() + 60
        while parked(r) < n and time.monotonic() < deadline:
            time.sleep(0.2)
        got = parked(r)
        T.eq(got, n, 'every watch is parked')
        rss1 = rss_kb(r.proc.pid)
        print(f'    {n} watches from {addrs} addresses parked in {time.monotonic() - t0:.1f} s; '
              f'RSS {rss0 / 1024:.1f} MB -> {rss1 / 1024:.1f} MB '
              f'({(rss1 - rss0) * 1024 / n / 1024:.2f} KB per parked watch)', flush=True)
        early = sum(1 for s in socks if sel_ready(s))
        T.eq(early, 0, 'none answered before the change')
        for s in socks:
            sel.register(s, selectors.EVENT_READ, bytearray())
        t1 = time.monotonic()
        T.eq(post(r, '10.9.9.2'), 201, 'one change')
        answered, ok, last = 0, 0, t1
        deadline = time.monotonic() + 60
        while answered < n and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=1):
                buf = key.data
                chunk = key.fileobj.recv(65536)
                buf += chunk
                head, sep, rest = bytes(buf).partition(b'\r\n\r\n')
                if not sep:
                    if not chunk:
                        sel.unregister(key.fileobj)
                        answered += 1
                    continue
                length = 0
                for line in head.split(b'\r\n'):
                    if line.lower().startswith(b'content-length:'):
                        length = int(line.split(b':')[1])
                if len(rest) < length:
                    continue
                sel.unregister(key.fileobj)
                answered += 1
                last = time.monotonic()
                if head.startswith(b'HTTP/1.1 200') and b'10.9.9.2' in rest and \
                        f'x-r53reg-index: {ix}\r'.encode() not in head.lower() + b'\r':
                    ok += 1
        T.eq(answered, n, 'every watch answered')
        T.eq(ok, n, 'every answer is 200 with the change and a new index')
        print(f'    one change answered {ok} of {n} watches; the last {(last - t1) * 1000:.0f} ms '
              f'after the change was sent; peak RSS {rss_peak_kb(r.proc.pid) / 1024:.1f} MB',
              flush=True)
    finally:
        for s in socks:
            s.close()
        stop(r)


def sel_ready(s):
    try:
        return s.recv(1, socket.MSG_PEEK) != b''
    except BlockingIOError:
        return False


def rss_peak_kb(pid):
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1])
    return 0


def main():
    reg_process.BIN = sys.argv[1]
    r = start()
    try:
        T.run('labels and 304', test_labels, r)
        T.run('index watch', test_index_watch, r)
        T.run('timeouts', test_timeout, r)
        T.run('tag watch', test_tag_watch, r)
        T.run('If-None-Match: * watch', test_star, r)
        T.run('tag watches kept through other changes', test_tag_kept, r)
        T.run('single backend and detail', test_single, r)
        T.run('bad watch parameters', test_bad, r)
    finally:
        T.eq(stop(r), 0, 'r53reg exits 0')
    T.run('shutdown answers watches', test_shutdown, None)
    T.run('10,000 parked watches', test_ten_thousand, None)
    T.finish()


if __name__ == '__main__':
    main()
