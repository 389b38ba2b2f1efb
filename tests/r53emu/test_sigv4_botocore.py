#!/usr/bin/python3
"""Cross-check of SigV4 signing: botocore's SigV4Auth, r53reg's aws/sigv4.h (through sigv4_cli)
and r53emu's verifier must agree.

usage: /usr/bin/python3 test_sigv4_botocore.py path/to/r53emu path/to/sigv4_cli

For each of a dozen varied Route 53 requests (paths, queries with characters that need
escaping, bodies, a session token, whitespace in header values), sign with botocore at a fixed
time and check that
  1. sigv4_cli prints the identical Authorization header (at the suite's time 20150830T123600Z
     for host route53.amazonaws.com, and at "now" for the emulator's host), and
  2. r53emu accepts the botocore-signed request (no 403), while it refuses tampered, expired,
     mis-scoped and incompletely signed variants with the AWS error codes.
Prints 'N passed, M failed' last; exits non-zero on any failure.
"""
import sys

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree

import datetime  # noqa: E402
import http.client  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import xml.etree.ElementTree as ET  # noqa: E402
from unittest import mock  # noqa: E402
from urllib.parse import quote, urlsplit  # noqa: E402

from botocore.auth import SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

from emutest import AKID, SECRET, ZONE, Emu, Tally  # noqa: E402

NS = '{https://route53.amazonaws.com/doc/2013-04-01/}'
T = Tally()
SUITE_TIME = datetime.datetime(2015, 8, 30, 12, 36, 0)
SUITE_AKID, SUITE_SECRET = 'AKIDEXAMPLE', 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY'
TOKEN = 'AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRX' \
        'mxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburE' \
        'Dy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkU' \
        'L64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=='


def q(s):
    return quote(s, safe='-_.~')


def body_xml(name, comment=None):
    c = f'<Comment>{comment}</Comment>' if comment else ''
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<ChangeResourceRecordSetsRequest '
            f'xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><ChangeBatch>{c}<Changes>'
            f'<Change><Action>UPSERT</Action><ResourceRecordSet><Name>{name}</Name><Type>A</Type>'
            f'<SetIdentifier>s1</SetIdentifier><Weight>1</Weight><TTL>60</TTL><ResourceRecords>'
            f'<ResourceRecord><Value>10.0.0.1</Value></ResourceRecord></ResourceRecords>'
            f'</ResourceRecordSet></Change></Changes></ChangeBatch>'
            f'</ChangeResourceRecordSetsRequest>').encode('utf-8')


def cases(change_id):
    """(label, method, path_and_query, body, extra headers, use token)"""
    rr = f'/2013-04-01/hostedzone/{ZONE}/rrset'
    return [
        ('GetHostedZone', 'GET', f'/2013-04-01/hostedzone/{ZONE}', b'', {}, False),
        ('list, no query', 'GET', rr, b'', {}, False),
        ('list, unsorted query', 'GET', f'{rr}?type=A&name=a.example.com.&maxitems=2', b'', {},
         False),
        ('list, wildcard name', 'GET', f'{rr}?name={q("*.example.com.")}&type=A', b'', {}, False),
        ('list, identifier with reserved characters', 'GET',
         f'{rr}?name=w.example.com.&type=A&identifier={q("id with/slash+plus=eq&amp~t")}', b'',
         {}, False),
        ('list, UTF-8 name', 'GET', f'{rr}?name={q("ü.example.com.")}', b'', {}, False),
        ('list, empty value and bare key', 'GET', f'{rr}?name=&maxitems', b'', {}, False),
        ('change, trailing slash', 'POST', rr + '/', body_xml('sig1.example.com'), {}, False),
        ('change, no trailing slash, UTF-8 body', 'POST', rr,
         body_xml('sig2.example.com', comment='naïve “quotes” & more'.replace('&', '&amp;')), {},
         False),
        ('GetChange', 'GET', f'/2013-04-01/change/{change_id}', b'', {}, False),
        ('header whitespace', 'GET', f'/2013-04-01/hostedzone/{ZONE}', b'',
         {'X-Emu-Note': '  several   spaces\there  '}, False),
        ('escaped byte in path', 'GET', '/2013-04-01/hostedzone/Z%2A1', b'', {}, False),
        ('session token', 'GET', f'/2013-04-01/hostedzone/{ZONE}', b'', {}, True),
        ('session token, POST', 'POST', rr + '/', body_xml('sig3.example.com'), {}, True),
    ]


def botocore_sign(host, method, path_query, body, headers, when, akid, secret, token):
    req = AWSRequest(method=method, url=f'http://{host}{path_query}', data=body,
                     headers=dict(headers))
    auth = SigV4Auth(Credentials(akid, secret, token), 'route53', 'us-east-1')
    with mock.patch('botocore.auth.datetime') as dt:
        dt.datetime.utcnow.return_value = when
        auth.add_auth(req)
    signed = auth.headers_to_sign(req)
    return req, signed


def cli_sign(cli, method, path_query, body, signed_pairs, amz_date, akid, secret,
             region='us-east-1', service='route53'):
    parts = urlsplit(path_query)
    lines = [f'method {method}', f'path {parts.path}', f'date {amz_date}', f'access-key {akid}',
             f'secret-key {secret}', f'region {region}', f'service {service}']
    if parts.query:
        lines.append(f'query {parts.query}')
    lines += [f'header {n}:{v}' for n, v in signed_pairs]
    data = ('\n'.join(lines) + '\n\n').encode('utf-8') + body
    p = subprocess.run([cli], input=data, capture_output=True, timeout=10)
    if p.returncode != 0:
        raise RuntimeError(f'sigv4_cli failed: {p.stderr!r}')
    return p.stdout.decode().rstrip('\n')


def signed_pairs_of(auth_header, signed_map):
    names = auth_header.split('SignedHeaders=')[1].split(',')[0].split(';')
    return [(n, v) for n in names for v in signed_map.get_all(n)]


def send(port, method, path_query, body, headers):
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
    conn.request(method, path_query, body=body, headers=headers)
    resp = conn.getresponse()
    text = resp.read().decode('utf-8', 'replace')
    conn.close()
    code = None
    try:
        el = ET.fromstring(text).find(f'{NS}Error/{NS}Code')
        code = el.text if el is not None else None
    except ET.ParseError:
        pass
    return resp.status, code, text


def t_cross_check_suite_time(cli):
    for label, method, pq, body, hdrs, use_token in cases('C0000000000000'):
        req, signed = botocore_sign('route53.amazonaws.com', method, pq, body, hdrs, SUITE_TIME,
                                    SUITE_AKID, SUITE_SECRET, TOKEN if use_token else None)
        theirs = req.headers['Authorization']
        ours = cli_sign(cli, method, pq, body, signed_pairs_of(theirs, signed),
                        req.context['timestamp'], SUITE_AKID, SUITE_SECRET)
        T.eq(ours, theirs, f'suite time, {label}: sigv4.h == botocore')


def t_emulator_accepts(exe, cli):
    e = Emu(exe)
    et = Emu(exe, '--session-token', TOKEN)
    try:
        now = datetime.datetime.utcnow().replace(microsecond=0)
        change_id = e.client().change_resource_record_sets(
            HostedZoneId=ZONE, ChangeBatch={'Changes': [{'Action': 'CREATE', 'ResourceRecordSet': {
                'Name': 'c.example.com', 'Type': 'A', 'TTL': 60,
                'ResourceRecords': [{'Value': '10.0.0.1'}]}}]})['ChangeInfo']['Id'].split('/')[-1]
        for label, method, pq, body, hdrs, use_token in cases(change_id):
            emu = et if use_token else e
            host = f'127.0.0.1:{emu.port}'
            req, signed = botocore_sign(host, method, pq, body, hdrs, now, AKID, SECRET,
                                        TOKEN if use_token else None)
            theirs = req.headers['Authorization']
            ours = cli_sign(cli, method, pq, body, signed_pairs_of(theirs, signed),
                            req.context['timestamp'], AKID, SECRET)
            T.eq(ours, theirs, f'now, {label}: sigv4.h == botocore')
            st, code, text = send(emu.port, method, pq, body, dict(req.headers.items()))
            T.check(st != 403, f'now, {label}: r53emu accepts the botocore signature',
                    f'{st} {text[:600]}')
            expect_ok = label not in ('escaped byte in path', 'list, empty value and bare key')
            if expect_ok:
                T.eq(st, 200, f'now, {label}: answered 200')

        # refusals
        pq = f'/2013-04-01/hostedzone/{ZONE}'
        host = f'127.0.0.1:{e.port}'

        def refused(headers, code, part, what, port=e.port, body=b'', path=pq, method='GET'):
            st, got, text = send(port, method, path, body, headers)
            T.check(st == 403 and got == code and part in text, what, f'{st} {got} {text[:400]}')

        old = now - datetime.timedelta(minutes=6)
        req, _ = botocore_sign(host, 'GET', pq, b'', {}, old, AKID, SECRET, None)
        refused(dict(req.headers.items()), 'SignatureDoesNotMatch', 'Signature expired',
                'x-amz-date 6 minutes old')
        new = now + datetime.timedelta(minutes=6)
        req, _ = botocore_sign(host, 'GET', pq, b'', {}, new, AKID, SECRET, None)
        refused(dict(req.headers.items()), 'SignatureDoesNotMatch', 'Signature not yet current',
                'x-amz-date 6 minutes ahead')
        req, _ = botocore_sign(host, 'GET', pq, b'', {}, now - datetime.timedelta(minutes=4),
                               AKID, SECRET, None)
        st, _, _ = send(e.port, 'GET', pq, b'', dict(req.headers.items()))
        T.eq(st, 200, 'x-amz-date 4 minutes old is still accepted')

        req = AWSRequest(method='GET', url=f'http://{host}{pq}')
        with mock.patch('botocore.auth.datetime') as dt:
            dt.datetime.utcnow.return_value = now
            SigV4Auth(Credentials(AKID, SECRET), 'route53', 'us-west-2').add_auth(req)
        refused(dict(req.headers.items()), 'SignatureDoesNotMatch', 'valid region',
                'scope region us-west-2')
        req = AWSRequest(method='GET', url=f'http://{host}{pq}')
        with mock.patch('botocore.auth.datetime') as dt:
            dt.datetime.utcnow.return_value = now
            SigV4Auth(Credentials(AKID, SECRET), 'ec2', 'us-east-1').add_auth(req)
        refused(dict(req.headers.items()), 'SignatureDoesNotMatch', "correct service: 'route53'",
                'scope service ec2')

        req, _ = botocore_sign(host, 'GET', pq, b'', {}, now, AKID, SECRET, None)
        h = dict(req.headers.items())
        h['Authorization'] = h['Authorization'].split(', Signature=')[0]
        refused(h, 'IncompleteSignature', "requires 'Signature' parameter", 'no Signature=')
        h = dict(req.headers.items())
        h['Authorization'] = h['Authorization'].replace('Credential=AKIDEMU/', 'Credential=')
        refused(h, 'IncompleteSignature', 'Credential must have exactly 5', 'short credential')
        h = dict(req.headers.items())
        del h['X-Amz-Date']
        refused(h, 'IncompleteSignature', "'X-Amz-Date' or a 'Date' header", 'no x-amz-date')
        h = dict(req.headers.items())
        h['X-Amz-Date'] = (now + datetime.timedelta(seconds=1)).strftime('%Y%m%dT%H%M%SZ')
        refused(h, 'SignatureDoesNotMatch', 'The Canonical String for this request',
                'x-amz-date changed after signing')
        # host left out of SignedHeaders (signed by sigv4.h without it)
        amz = now.strftime('%Y%m%dT%H%M%SZ')
        auth = cli_sign(cli, 'GET', pq, b'', [('x-amz-date', amz)], amz, AKID, SECRET)
        refused({'X-Amz-Date': amz, 'Authorization': auth}, 'IncompleteSignature',
                "'Host' or ':authority' must be a 'SignedHeader'", 'host not signed')
        # a request signed by r53reg's signer is accepted
        auth = cli_sign(cli, 'GET', pq, b'', [('host', host), ('x-amz-date', amz)], amz, AKID,
                        SECRET)
        st, _, text = send(e.port, 'GET', pq, b'', {'X-Amz-Date': amz, 'Authorization': auth})
        T.eq(st, 200, 'a request signed by sigv4.h (sigv4_cli) is accepted')
        # the token must be signed when used
        et_host = f'127.0.0.1:{et.port}'
        auth = cli_sign(cli, 'GET', pq, b'', [('host', et_host), ('x-amz-date', amz)], amz, AKID,
                        SECRET)
        refused({'X-Amz-Date': amz, 'Authorization': auth, 'X-Amz-Security-Token': TOKEN},
                'IncompleteSignature', 'X-Amz-Security-Token', 'token sent unsigned', port=et.port)
        refused({'X-Amz-Date': amz, 'Authorization': auth}, 'InvalidClientTokenId',
                'security token included in the request is invalid', 'token missing',
                port=et.port)
        # a body changed after signing
        body = body_xml('tamper.example.com')
        rr = f'/2013-04-01/hostedzone/{ZONE}/rrset/'
        req, _ = botocore_sign(host, 'POST', rr, body, {}, now, AKID, SECRET, None)
        refused(dict(req.headers.items()), 'SignatureDoesNotMatch', 'does not match',
                'body changed after signing', body=body.replace(b'10.0.0.1', b'10.0.0.2'),
                path=rr, method='POST')
        # a query changed after signing
        req, _ = botocore_sign(host, 'GET', f'{pq}/rrset?maxitems=1', b'', {}, now, AKID, SECRET,
                               None)
        refused(dict(req.headers.items()), 'SignatureDoesNotMatch', 'does not match',
                'query changed after signing', path=f'{pq}/rrset?maxitems=2')
    finally:
        T.current = 'shutdown'
        T.eq(e.stop(), 0, 'clean exit')
        T.eq(et.stop(), 0, 'clean exit (token instance)')


def main():
    exe, cli = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    T.run('cross_check_suite_time', t_cross_check_suite_time, cli)
    T.run('emulator_accepts', t_emulator_accepts, exe, cli)
    T.finish()


if __name__ == '__main__':
    main()
