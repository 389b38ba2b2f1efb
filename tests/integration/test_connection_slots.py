"""A connection that the client closes frees its per-address slot at once, not after
--client-timeout: one address cannot fill its --max-connections-per-ip slots with sockets it
no longer holds. Four ways of leaving: close or half-close (shutdown SHUT_WR) after part of the
headers, and after the headers and part of the body.

Usage: test_connection_slots.py BIN_DIR   (holds r53reg). Prints 'N passed, M failed' last.
"""
import os
import re
import select
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'r53emu'))
from emutest import Tally  # noqa: E402

T = Tally()
SLOTS, CLIENT_TIMEOUT = 8, 30
HEAD = b'POST /backends/10.0.0.1 HTTP/1.1\r\nHost: x\r\nContent-Le'
BODY = (b'POST /backends/10.0.0.1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n'
        b'Content-Length: 100\r\n\r\n{"lea')


def start(bin_dir):
    p = subprocess.Popen([os.path.join(bin_dir, 'r53reg'), '--listen', '127.0.0.1:0',
                          '--max-connections-per-ip', str(SLOTS), '--client-timeout',
                          str(CLIENT_TIMEOUT), '--client-rps', '0'],
                         stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    buf, deadline = b'', time.monotonic() + 20
    while time.monotonic() < deadline:
        if select.select([p.stderr], [], [], 1)[0]:
            buf += os.read(p.stderr.fileno(), 65536)
            m = re.search(rb'msg=listening listen=127\.0\.0\.1:(\d+)', buf)
            if m:
                return p, int(m.group(1))
    p.kill()
    raise RuntimeError('r53reg did not start: ' + buf.decode(errors='replace'))


def healthz(port):
    try:
        s = socket.create_connection(('127.0.0.1', port), timeout=3)
        s.sendall(b'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
        data = s.recv(64)
        s.close()
        return data.startswith(b'HTTP/1.1 200')
    except OSError:
        return False


def main():
    p, port = start(sys.argv[1])
    try:
        for label, req, leave in (('close after part of the headers', HEAD, 'close'),
                                  ('half-close after part of the headers', HEAD, 'shut'),
                                  ('close after part of the body', BODY, 'close'),
                                  ('half-close after part of the body', BODY, 'shut')):
            socks = [socket.create_connection(('127.0.0.1', port)) for _ in range(SLOTS)]
            for s in socks:
                s.sendall(req)
            time.sleep(0.2)
            T.check(not healthz(port), f'{label}: the {SLOTS} slots are taken while open')
            for s in socks:
                if leave == 'close':
                    s.close()
                else:
                    s.shutdown(socket.SHUT_WR)
            t0 = time.monotonic()
            while not healthz(port) and time.monotonic() - t0 < CLIENT_TIMEOUT:
                time.sleep(0.01)
            took = time.monotonic() - t0
            T.check(took < 5, f'{label}: the slots are free again long before --client-timeout '
                    f'({CLIENT_TIMEOUT} s)', f'{took:.2f} s')
            print(f'    {label}: a new request answered {took * 1000:.0f} ms after', flush=True)
            for s in socks:
                s.close()
            time.sleep(0.3)
    finally:
        p.terminate()
        p.wait(10)
    T.finish()


if __name__ == '__main__':
    main()
