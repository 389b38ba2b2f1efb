"""Answers that fit: the capacity r53reg gives each record is what fits the DNS answer budget,
checked by building the real DNS answer with dnspython (an independent encoder).

Usage: test_answer_size.py BIN_DIR   (holds r53reg)

For each budget and type, r53reg (embedded store, --buckets 1) takes registrations until it
answers 409 buckets-full; the count is its capacity. The answer Route 53 would give for a
record of that many values (question, one compressed A/AAAA record per value, an authority
section naming four Route 53 name servers, EDNS0) must fit the budget, and one more value must
not. GET /buckets reports each record's answer_bytes: never below the real size. A
--max-per-bucket above the budget is allowed and starts with a warning naming TCP fallback.
Prints 'N passed, M failed' last.
"""
import http.client
import os
import re
import select
import signal
import subprocess
import sys
import time

import dns.edns
import dns.message
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'r53emu'))
from emutest import Tally  # noqa: E402

T = Tally()
BIN = sys.argv[1] if __name__ == '__main__' else None
NAME = 'app.example.com'
# Route 53 gives every zone four name servers in four top-level domains.
NS = ['ns-2048.awsdns-64.com.', 'ns-2049.awsdns-64.net.', 'ns-2050.awsdns-64.org.',
      'ns-2051.awsdns-64.co.uk.']


def answer_size(rdtype, values, budget):
    """The wire size of the answer to a query for NAME/rdtype holding values."""
    q = dns.message.make_query(NAME + '.', rdtype, use_edns=0, payload=budget)
    r = dns.message.make_response(q)
    r.answer.append(dns.rrset.from_text_list(NAME + '.', 60, 'IN', rdtype, values))
    r.authority.append(dns.rrset.from_text_list('example.com.', 172800, 'IN', 'NS', NS))
    return len(r.to_wire(max_size=65535))


def addresses(rdtype, n):
    if rdtype == 'A':
        return ['10.%d.%d.%d' % (1 + i // 65536, i // 256 % 256, i % 256) for i in
                range(1, n + 1)]
    return ['2001:db8::%x' % i for i in range(1, n + 1)]  # documentation range, never contacted


class Server:
    def __init__(self, *extra):
        args = [os.path.join(BIN, 'r53reg'), '--listen', '127.0.0.1:0', '--record-name', NAME,
                '--buckets', '1', '--client-rps', '0'] + list(extra)
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.log, self.port = b'', None
        deadline = time.monotonic() + 20
        fd = self.proc.stderr.fileno()
        while time.monotonic() < deadline and self.port is None:
            if not select.select([fd], [], [], 1)[0]:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            self.log += chunk
            m = re.search(rb'msg=listening listen=127\.0\.0\.1:(\d+)', self.log)
            if m:
                self.port = int(m.group(1))
        if self.port is None:
            self.proc.kill()
            raise RuntimeError('r53reg did not start:\n' + self.log.decode(errors='replace'))

    def req(self, method, path):
        conn = http.client.HTTPConnection('127.0.0.1', self.port, timeout=30)
        conn.request(method, path)
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        return resp.status, body

    def fill(self, rdtype, limit=500):
        """Register until buckets-full; the addresses taken."""
        taken = []
        for ip in addresses(rdtype, limit):
            st, _ = self.req('POST', '/backends/' + ip)
            if st == 409:
                return taken
            if st != 201:
                raise RuntimeError(f'POST {ip}: {st}')
            taken.append(ip)
        return taken

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def bucket_answer_bytes(srv):
    import json
    st, body = srv.req('GET', '/buckets')
    doc = json.loads(body)
    return {b['type']: (b['answer_bytes'], b['capacity']) for b in doc['buckets']}, doc


def test_budget(budget, want):
    srv = Server('--max-answer-bytes', str(budget))
    try:
        for rdtype in ('A', 'AAAA'):
            taken = srv.fill(rdtype)
            n = len(taken)
            T.eq(n, want[rdtype], f'{budget} bytes: {rdtype} capacity')
            real = answer_size(rdtype, taken, budget)
            T.check(real <= budget, f'{budget} bytes: the {rdtype} answer with {n} values fits',
                    f'{real} bytes')
            more = answer_size(rdtype, addresses(rdtype, n + 1), budget)
            T.check(more > budget, f'{budget} bytes: one more {rdtype} value would not fit',
                    f'{more} bytes')
            reported, _ = bucket_answer_bytes(srv)
            got, cap = reported[rdtype]
            # r53reg counts every name server name at the longest Route 53 gives, uncompressed:
            # a few bytes over the real answer, never under it, and less than one value over.
            T.check(real <= got < real + 16, f'{budget} bytes: GET /buckets answer_bytes '
                    f'({got}) is the {rdtype} answer size, never below it', f'real {real}')
            T.eq(cap, n, f'{budget} bytes: GET /buckets capacity of {rdtype}')
        _, doc = bucket_answer_bytes(srv)
        T.eq(doc.get('max_answer_bytes'), budget, 'GET /buckets names the budget')
        T.check(b'warning' not in srv.log and b'TCP fallback' not in srv.log,
                'no warning at start when the capacity follows the budget')
    finally:
        srv.stop()


def test_above_budget():
    srv = Server('--max-per-bucket', '100')
    try:
        T.check(b'stub resolvers without TCP fallback' in srv.log,
                '--max-per-bucket 100 starts with a warning naming TCP fallback')
        taken = srv.fill('A', 150)
        T.eq(len(taken), 100, 'and holds 100 values per record as asked')
        reported, _ = bucket_answer_bytes(srv)
        T.check(reported['A'][0] > 1232, 'GET /buckets shows the answer is over 1232 bytes',
                str(reported['A'][0]))
    finally:
        srv.stop()


def main():
    test_budget(1232, {'A': 65, 'AAAA': 37})
    test_budget(512, {'A': 20, 'AAAA': 11})
    test_above_budget()
    sys.exit(T.finish())


if __name__ == '__main__':
    main()
