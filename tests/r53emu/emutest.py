"""Shared helpers for the r53emu Python tests (run with /usr/bin/python3: Debian's boto3).

Emu starts r53emu on 127.0.0.1:0, reads 'listening port=N' and stops it with SIGTERM.
Tally counts checks; every test prints 'N passed, M failed' last and exits non-zero on failure.
"""
import http.client
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
import traceback

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

ZONE = 'Z123ABC'
ZONE_NAME = 'example.com.'
OTHER = 'Z2OTHER'
AKID = 'AKIDEMU'
SECRET = 'emu/secret+KEY'


class Emu:
    def __init__(self, exe, *extra, zones=(f'{ZONE}:example.com', f'{OTHER}:other.org'),
                 akid=AKID, secret=SECRET):
        self.exe = exe
        self.akid, self.secret = akid, secret
        args = [exe, '--listen', '127.0.0.1:0', '--access-key', akid, '--secret-key', secret]
        for z in zones:
            args += ['--zone', z]
        args += list(extra)
        self.errlog = tempfile.NamedTemporaryFile(prefix='r53emu-', suffix='.log', delete=False)
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.errlog)
        ready, _, _ = select.select([self.proc.stdout], [], [], 10)
        line = self.proc.stdout.readline().decode() if ready else ''
        if not line.startswith('listening port='):
            self.proc.kill()
            raise RuntimeError(f'r53emu did not start: {line!r} {self.stderr()}')
        self.port = int(line.split('=', 1)[1])
        self.endpoint = f'http://127.0.0.1:{self.port}'

    def stderr(self):
        with open(self.errlog.name, errors='replace') as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        os.unlink(self.errlog.name)
        return self.proc.returncode

    # --- clients ------------------------------------------------------------------------
    def client(self, akid=None, secret=None, token=None, attempts=1):
        """attempts counts every try: botocore's retries={'max_attempts': 1} still allows one
        retry (max_attempts counts retries), total_max_attempts=1 disables them."""
        return boto3.client(
            'route53', endpoint_url=self.endpoint, region_name='us-east-1',
            aws_access_key_id=akid or self.akid, aws_secret_access_key=secret or self.secret,
            aws_session_token=token,
            config=Config(retries={'total_max_attempts': attempts, 'mode': 'standard'},
                          connect_timeout=10, read_timeout=60))

    def control(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        conn = http.client.HTTPConnection('127.0.0.1', self.port, timeout=30)
        conn.request(method, '/_emu/' + path, body=data,
                     headers={'Content-Type': 'application/json'} if data else {})
        resp = conn.getresponse()
        out = resp.read()
        conn.close()
        return resp.status, json.loads(out) if out else None

    def faults(self, **kw):
        st, body = self.control('POST', 'faults', kw)
        if st != 200:
            raise RuntimeError(f'faults {kw}: {st} {body}')
        return body

    def reset(self):
        """Clear both zones and every fault; keep the default insync delay."""
        self.faults(latency_ms=0, latency_jitter_ms=0, reset=0, err5xx=0, throttle=0, prior=0,
                    reset_after_apply=0, icb_shape='envelope', rate=0, change_rate=0,
                    change_unit='changes', retry_after=0, list_paging='normal', list_max_items=0,
                    list_identifier='lenient',
                    force={'reset': 0, 'err5xx': 0, 'throttle': 0, 'prior': 0,
                           'reset_after_apply': 0})
        for z in (ZONE, OTHER):
            self.control('POST', f'zones/{z}/clear')

    def rrsets(self, zone=ZONE):
        return self.control('GET', f'zones/{zone}')[1]['rrsets']

    # --- raw signed requests (bodies and headers exactly as given) ---------------------
    def signed_headers(self, method, path_query, body=b'', token=None, akid=None, secret=None,
                       headers=None):
        req = AWSRequest(method=method, url=self.endpoint + path_query, data=body,
                         headers=dict(headers or {}))
        SigV4Auth(Credentials(akid or self.akid, secret or self.secret, token), 'route53',
                  'us-east-1').add_auth(req)
        return dict(req.headers.items())

    def raw(self, method, path_query, body=b'', headers=None, sign=True, **kw):
        hdrs = self.signed_headers(method, path_query, body, **kw) if sign else dict(headers or {})
        if sign and headers:
            hdrs.update({k: v for k, v in headers.items() if k not in hdrs})
        conn = http.client.HTTPConnection('127.0.0.1', self.port, timeout=60)
        conn.request(method, path_query, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, dict(resp.getheaders()), data.decode('utf-8', 'replace')


class Tally:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.current = ''

    def check(self, cond, what, detail=''):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print(f'FAIL [{self.current}] {what}' + (f': {detail}' if detail else ''), flush=True)
        return cond

    def eq(self, got, want, what):
        return self.check(got == want, what, f'got {got!r}, want {want!r}')

    def run(self, name, fn, *args):
        only = os.environ.get('ONLY')  # ONLY=drain runs the cases whose name contains it
        if only and only not in name:
            return
        self.current = name
        t0 = time.monotonic()
        try:
            fn(*args)
        except Exception:  # a crashed test is one failure, the others still run
            self.failed += 1
            print(f'FAIL [{name}] raised:\n{traceback.format_exc()}', flush=True)
        print(f'  {name} ({time.monotonic() - t0:.2f}s)', flush=True)

    def finish(self):
        print(f'{self.passed} passed, {self.failed} failed', flush=True)
        sys.exit(1 if self.failed else 0)
