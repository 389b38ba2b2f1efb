#!/usr/bin/python3
"""Fidelity test of r53emu against botocore (boto3 1.26 / botocore 1.29 from Debian).

usage: /usr/bin/python3 test_boto3.py path/to/r53emu

Requests signed by botocore must verify; every response must parse in botocore to the right
shape and error Code; the emulator must refuse what Route 53 refuses (tests/r53emu/README.md lists
the rules). Prints 'N passed, M failed' last; exits non-zero on any failure.
"""
import sys

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree

import concurrent.futures  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import xml.etree.ElementTree as ET  # noqa: E402

import botocore.exceptions  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

from emutest import AKID, OTHER, SECRET, ZONE, ZONE_NAME, Emu, Tally  # noqa: E402

NS = '{https://route53.amazonaws.com/doc/2013-04-01/}'
T = Tally()
CREATE_KEPT = (b'<ChangeResourceRecordSetsRequest xmlns="https://route53.amazonaws.com/doc/'
               b'2013-04-01/"><ChangeBatch><Changes><Change><Action>CREATE</Action>'
               b'<ResourceRecordSet><Name>kept.example.com</Name><Type>A</Type><SetIdentifier>k'
               b'</SetIdentifier><Weight>9</Weight><TTL>60</TTL><ResourceRecords><ResourceRecord>'
               b'<Value>10.0.0.7</Value></ResourceRecord></ResourceRecords></ResourceRecordSet>'
               b'</Change></Changes></ChangeBatch></ChangeResourceRecordSetsRequest>')


def rrs(name, values, ttl=60, type_='A', sid=None, weight=None):
    """A ResourceRecordSet dict in API Reference element order: botocore serializes members in
    the order of the caller's dict, and r53emu (like the API Reference) wants syntax order."""
    rr = {'Name': name, 'Type': type_}
    if sid is not None:
        rr['SetIdentifier'] = sid
        rr['Weight'] = weight
    rr['TTL'] = ttl
    rr['ResourceRecords'] = [{'Value': v} for v in values]
    return rr


def change(c, *changes, zone=ZONE, comment=None):
    batch = {'Comment': comment} if comment else {}  # Comment precedes Changes
    batch['Changes'] = [{'Action': a, 'ResourceRecordSet': r} for a, r in changes]
    return c.change_resource_record_sets(HostedZoneId=zone, ChangeBatch=batch)


def expect_error(fn, code, status=None, contains=None, what=''):
    """Run fn, which must raise ClientError with this Code (and status, message part)."""
    label = what or code
    try:
        fn()
    except ClientError as e:
        err = e.response.get('Error', {})
        ok = T.eq(err.get('Code'), code, f'{label}: error code')
        if status is not None:
            ok &= T.eq(e.response['ResponseMetadata']['HTTPStatusCode'], status,
                       f'{label}: HTTP status')
        if contains is not None:
            ok &= T.check(contains in err.get('Message', ''), f'{label}: message',
                          f'{contains!r} not in {err.get("Message")!r}')
        return e
    T.check(False, f'{label}: expected ClientError {code}, call succeeded')
    return None


def names_types_ids(sets):
    return [(r['Name'], r['Type'], r.get('SetIdentifier')) for r in sets]


# --- API semantics ------------------------------------------------------------------------

def t_get_hosted_zone(e):
    c = e.client()
    z = c.get_hosted_zone(Id=ZONE)
    T.eq(z['HostedZone']['Id'], f'/hostedzone/{ZONE}', 'zone id')
    T.eq(z['HostedZone']['Name'], ZONE_NAME, 'zone name')
    T.eq(z['HostedZone']['ResourceRecordSetCount'], 2, 'a new zone holds SOA and NS')
    T.eq(z['HostedZone']['Config']['PrivateZone'], False, 'public zone')
    T.eq(len(z['DelegationSet']['NameServers']), 4, 'four name servers')
    T.eq(c.get_hosted_zone(Id=f'/hostedzone/{ZONE}')['HostedZone']['Id'], f'/hostedzone/{ZONE}',
         'botocore strips the /hostedzone/ prefix')
    sets = c.list_resource_record_sets(HostedZoneId=ZONE)['ResourceRecordSets']
    T.eq([(r['Name'], r['Type']) for r in sets], [(ZONE_NAME, 'NS'), (ZONE_NAME, 'SOA')],
         'apex NS and SOA')


def t_create_weighted_and_get_change(e):
    c = e.client()
    r = change(c,
               ('CREATE', rrs('App.Example.com', ['10.0.0.1', '10.0.0.2', '10.0.0.3'],
                              sid='app_1', weight=10)),
               ('CREATE', rrs('app.example.com.', ['10.0.1.1', '10.0.1.2'], sid='app_0',
                              weight=0)),
               ('CREATE', rrs('app.example.com', ['2001:db8::1', '2001:db8::2'], type_='AAAA',
                              sid='v6', weight=5)),
               comment='register')
    info = r['ChangeInfo']
    T.check(info['Id'].startswith('/change/C'), 'change id is /change/C...', info['Id'])
    T.eq(info['Status'], 'PENDING', 'ChangeResourceRecordSets answers PENDING')
    T.eq(info.get('Comment'), 'register', 'comment echoed')
    T.eq(c.get_change(Id=info['Id'])['ChangeInfo']['Status'], 'PENDING',
         'GetChange PENDING right after the change')
    time.sleep(0.5)  # --insync-after-ms 300
    got = c.get_change(Id=info['Id'])['ChangeInfo']
    T.eq(got['Status'], 'INSYNC', 'GetChange INSYNC later')
    T.eq(got['Id'], info['Id'], 'GetChange echoes the id')
    expect_error(lambda: c.get_change(Id='C0000000000000'), 'NoSuchChange', 404)

    sets = c.list_resource_record_sets(HostedZoneId=ZONE)['ResourceRecordSets']
    T.eq(names_types_ids(sets),
         [(ZONE_NAME, 'NS', None), (ZONE_NAME, 'SOA', None),
          ('app.example.com.', 'A', 'app_0'), ('app.example.com.', 'A', 'app_1'),
          ('app.example.com.', 'AAAA', 'v6')],
         'names lowercased with trailing dot; sorted by name, type, identifier')
    a1 = [r for r in sets if r.get('SetIdentifier') == 'app_1'][0]
    T.eq([v['Value'] for v in a1['ResourceRecords']], ['10.0.0.1', '10.0.0.2', '10.0.0.3'],
         'several values in one weighted record')
    T.eq((a1['Weight'], a1['TTL']), (10, 60), 'weight and TTL')


def t_cas_delete_create(e):
    c = e.client()
    old = rrs('cas.example.com', ['10.0.0.1', '10.0.0.2'], sid='b1', weight=10)
    change(c, ('CREATE', old))
    new = rrs('cas.example.com', ['10.0.0.1', '10.0.0.2', '10.0.0.9'], sid='b1', weight=10)
    change(c, ('DELETE', old), ('CREATE', new))
    vals = [v for r in e.rrsets() if r['name'] == 'cas.example.com.' for v in r['values']]
    T.eq(vals, ['10.0.0.1', '10.0.0.2', '10.0.0.9'], 'DELETE+CREATE swapped the record')
    # the same swap again is stale: the record is no longer the "old" one
    err = expect_error(lambda: change(c, ('DELETE', old), ('CREATE', new)), 'InvalidChangeBatch',
                       400,
                       "Tried to delete resource record set [name='cas.example.com.', type='A', "
                       "set-identifier='b1'] but the values provided do not match the current "
                       "values", 'stale CAS')
    if err:
        T.eq(err.response['Error']['Message'],
             "[Tried to delete resource record set [name='cas.example.com.', type='A', "
             "set-identifier='b1'] but the values provided do not match the current values]",
             'a stale CAS reports its DELETE, once, in a bracketed list')
    T.eq(len([r for r in e.rrsets() if r['name'] == 'cas.example.com.']), 1,
         'failed batch applied nothing')
    # values are compared as a set: any order matches
    shuffled = rrs('cas.example.com', ['10.0.0.9', '10.0.0.1', '10.0.0.2'], sid='b1', weight=10)
    change(c, ('DELETE', shuffled))
    T.eq([r for r in e.rrsets() if r['name'] == 'cas.example.com.'], [],
         'DELETE with values in another order')
    expect_error(lambda: change(c, ('DELETE', old)), 'InvalidChangeBatch', 400,
                 "Tried to delete resource record set [name='cas.example.com.', type='A', "
                 "set-identifier='b1'] but it was not found", 'delete missing')
    # weight and TTL are part of the match
    change(c, ('CREATE', old))
    for bad, what in ((rrs('cas.example.com', ['10.0.0.1', '10.0.0.2'], sid='b1', weight=11),
                       'weight'),
                      (rrs('cas.example.com', ['10.0.0.1', '10.0.0.2'], ttl=61, sid='b1',
                           weight=10), 'TTL'),
                      (rrs('cas.example.com', ['10.0.0.1'], sid='b1', weight=10), 'subset'),
                      (rrs('cas.example.com', ['10.0.0.1', '10.0.0.2', '10.0.0.3'], sid='b1',
                           weight=10), 'superset')):
        expect_error(lambda: change(c, ('DELETE', bad)), 'InvalidChangeBatch', 400,
                     'do not match the current values', f'DELETE with other {what}')


def t_cas_names_every_stale_set(e):
    """A batch of compare-and-swaps over several weighted sets, two of them stale: the error
    names each stale set once (its DELETE; the CREATE of the same set is not reported again),
    every one of them, and no other; nothing is applied."""
    c = e.client()
    old = {s: rrs('many.example.com', [f'10.9.{i}.1'], sid=s, weight=1)
           for i, s in enumerate(('m_0', 'm_1', 'm_2'))}
    change(c, *[('CREATE', r) for r in old.values()])
    changed = rrs('many.example.com', ['10.9.1.1', '10.9.1.2'], sid='m_1', weight=2)
    change(c, ('DELETE', old['m_1']), ('CREATE', changed))
    change(c, ('DELETE', old['m_2']))  # m_2 is gone
    new = {s: rrs('many.example.com', [f'10.9.{i}.1', f'10.9.{i}.9'], sid=s, weight=2)
           for i, s in enumerate(('m_0', 'm_1', 'm_2'))}
    batch = [('DELETE', old[s]) for s in old] + [('CREATE', new[s]) for s in new]
    err = expect_error(lambda: change(c, *batch), 'InvalidChangeBatch', 400, None,
                       'a batch with two stale sets')
    if err:
        T.eq(err.response['Error']['Message'],
             "[Tried to delete resource record set [name='many.example.com.', type='A', "
             "set-identifier='m_1'] but the values provided do not match the current values, "
             "Tried to delete resource record set [name='many.example.com.', type='A', "
             "set-identifier='m_2'] but it was not found]",
             'each stale set named once, in the order of the batch; the current one not at all')
    T.eq(sorted((r['set_identifier'], r['values']) for r in e.rrsets()
                if r['name'] == 'many.example.com.'),
         [('m_0', ['10.9.0.1']), ('m_1', ['10.9.1.1', '10.9.1.2'])], 'nothing applied')


def t_upsert_and_create_existing(e):
    c = e.client()
    change(c, ('UPSERT', rrs('up.example.com', ['10.1.0.1'], sid='x', weight=1)))
    change(c, ('UPSERT', rrs('up.example.com', ['10.1.0.2', '10.1.0.3'], sid='x', weight=7)))
    got = [r for r in e.rrsets() if r['name'] == 'up.example.com.']
    T.eq([(r['weight'], r['values']) for r in got], [(7, ['10.1.0.2', '10.1.0.3'])],
         'UPSERT replaced the record set')
    expect_error(lambda: change(c, ('CREATE', rrs('up.example.com', ['10.1.0.9'], sid='x',
                                                  weight=1))),
                 'InvalidChangeBatch', 400,
                 "Tried to create resource record set [name='up.example.com.', type='A', "
                 "set-identifier='x'] but it already exists", 'CREATE existing')
    change(c, ('CREATE', rrs('simple.example.com', ['10.2.0.1'])))
    expect_error(lambda: change(c, ('CREATE', rrs('SIMPLE.example.com.', ['10.2.0.2']))),
                 'InvalidChangeBatch', 400,
                 "Tried to create resource record set [name='simple.example.com.', type='A'] "
                 "but it already exists", 'CREATE existing simple (names compare caseless)')


def t_paging(e):
    c = e.client()
    changes = [('CREATE', rrs('w.example.com', [f'10.3.0.{i}'], sid=f'id{i:02d}', weight=i))
               for i in range(7)]
    changes += [('CREATE', rrs(n, ['10.4.0.1'])) for n in
                ('a.example.com', 'z.example.com', 'a.b.example.com', 'example-a.example.com',
                 'x.a-b.example.com', 'a-b.example.com', '*.example.com', '0.example.com')]
    change(c, *changes)
    full = c.list_resource_record_sets(HostedZoneId=ZONE)
    T.eq(full['IsTruncated'], False, 'one page holds all')
    T.eq(full['MaxItems'], '300', 'default maxitems 300')
    order = [(r['Name'], r['Type'], r.get('SetIdentifier')) for r in full['ResourceRecordSets']]
    T.eq([n for n, _, _ in order][:10],
         [ZONE_NAME, ZONE_NAME, '\\052.example.com.', '0.example.com.', 'a-b.example.com.',
          'x.a-b.example.com.', 'a.example.com.', 'a.b.example.com.', 'example-a.example.com.',
          'w.example.com.'],
         'sorted by the reversed name as a string: com.example.*. < com.example.0. < '
         'com.example.a-b. < com.example.a-b.x. < com.example.a. < com.example.a.b.')
    page = c.list_resource_record_sets(HostedZoneId=ZONE, MaxItems='10')
    T.eq((page['IsTruncated'], page['MaxItems'], len(page['ResourceRecordSets'])),
         (True, '10', 10), 'truncated page')
    T.eq((page.get('NextRecordName'), page.get('NextRecordType'),
          page.get('NextRecordIdentifier')), ('w.example.com.', 'A', 'id01'),
         'NextRecordName/Type/Identifier of the first record not shown')
    nxt = c.list_resource_record_sets(HostedZoneId=ZONE, StartRecordName='w.example.com.',
                                      StartRecordType='A', StartRecordIdentifier='id01',
                                      MaxItems='2')
    T.eq([r.get('SetIdentifier') for r in nxt['ResourceRecordSets']], ['id01', 'id02'],
         'identifier continues inside a weighted group')
    pages = list(c.get_paginator('list_resource_record_sets').paginate(
        HostedZoneId=ZONE, PaginationConfig={'PageSize': 2}))
    T.check(len(pages) >= 9 and all(len(p['ResourceRecordSets']) <= 2 for p in pages),
            'paginator pages of at most 2', str(len(pages)))
    T.eq([s for p in pages for s in p['ResourceRecordSets']], full['ResourceRecordSets'],
         'paginator walks every record set once, in order')
    big = c.list_resource_record_sets(HostedZoneId=ZONE, MaxItems='1000')
    T.eq(big['MaxItems'], '300', 'maxitems above 300 is treated as 300')
    expect_error(lambda: c.list_resource_record_sets(HostedZoneId=ZONE, StartRecordType='A'),
                 'InvalidInput', 400, what='type without name')
    expect_error(lambda: c.list_resource_record_sets(HostedZoneId=ZONE, MaxItems='0'),
                 'InvalidInput', 400, what='maxitems 0')
    expect_error(lambda: c.list_resource_record_sets(HostedZoneId=ZONE, StartRecordName='x.',
                                                     StartRecordType='BOGUS'),
                 'InvalidInput', 400, what='unknown type')
    start = c.list_resource_record_sets(HostedZoneId=ZONE, StartRecordName='b.example.com')
    T.eq(start['ResourceRecordSets'][0]['Name'], 'a.b.example.com.',
         'a name that does not exist starts at the next one')


def t_paging_faults(e):
    """Listings that do not end: a cycle (A -> B -> A) and a page that does not advance; a
    page cap so small zones page; an identifier that names nothing as InvalidInput."""
    c = e.client()
    change(c, *[('CREATE', rrs('pf.example.com', [f'10.5.0.{i}'], sid=f'id{i}', weight=1))
                for i in range(8)])

    def page(**kw):
        p = c.list_resource_record_sets(HostedZoneId=ZONE, **kw)
        nxt = (p.get('NextRecordName'), p.get('NextRecordType'), p.get('NextRecordIdentifier'))
        return [r.get('SetIdentifier') or r['Type'] for r in p['ResourceRecordSets']], nxt

    def start(nxt):
        return {'StartRecordName': nxt[0], 'StartRecordType': nxt[1],
                **({'StartRecordIdentifier': nxt[2]} if nxt[2] else {})}

    e.faults(list_max_items=3)
    a, na = page(StartRecordName='pf.example.com')
    T.eq((a, na), (['id0', 'id1', 'id2'], ('pf.example.com.', 'A', 'id3')),
         'list_max_items caps a page below maxitems')
    e.faults(list_paging='stuck')
    a, na = page(StartRecordName='pf.example.com')
    T.eq(na, ('pf.example.com.', 'A', 'id0'), 'stuck: next names the page\'s own first record')
    T.eq(page(**start(na)), (a, na), 'stuck: following it gives the same page again')
    e.faults(list_paging='cycle')
    a, na = page(StartRecordName='pf.example.com')
    b, nb = page(**start(na))
    a2, na2 = page(**start(nb))
    T.eq((a, b, nb), (['id0', 'id1', 'id2'], ['id3', 'id4', 'id5'],
                      ('pf.example.com.', 'A', 'id0')), 'cycle: page B points back at page A')
    T.eq((a2, na2), (a, na), 'cycle: A -> B -> A')
    e.faults(list_paging='normal', list_max_items=0)
    T.eq(page(StartRecordName='pf.example.com', MaxItems='3')[1],
         ('pf.example.com.', 'A', 'id3'), 'normal paging again')
    # identifiers that name no record set
    T.eq(page(StartRecordName='pf.example.com', StartRecordType='A',
              StartRecordIdentifier='id25', MaxItems='1')[0], ['id3'],
         'lenient: an unknown identifier starts at the next record set')
    # (id25 sorts between id2 and id3: identifiers compare as strings)
    e.faults(list_identifier='strict')
    expect_error(lambda: page(StartRecordName='pf.example.com', StartRecordType='A',
                              StartRecordIdentifier='id25'), 'InvalidInput', 400,
                 'set identifier id25', 'strict: an unknown identifier')
    T.eq(page(StartRecordName='pf.example.com', StartRecordType='A',
              StartRecordIdentifier='id2', MaxItems='1')[0], ['id2'],
         'strict: a known identifier lists')
    e.faults(list_identifier='lenient')


def t_no_such_zone(e):
    c = e.client()
    expect_error(lambda: c.get_hosted_zone(Id='ZNOPE'), 'NoSuchHostedZone', 404,
                 'No hosted zone found with ID: ZNOPE')
    expect_error(lambda: c.list_resource_record_sets(HostedZoneId='ZNOPE'), 'NoSuchHostedZone',
                 404)
    expect_error(lambda: change(c, ('CREATE', rrs('a.example.com', ['10.0.0.1'])), zone='ZNOPE'),
                 'NoSuchHostedZone', 404)
    try:
        c.get_hosted_zone(Id='ZNOPE')
    except c.exceptions.NoSuchHostedZone:
        T.check(True, 'modeled exception class')
    except ClientError:
        T.check(False, 'botocore maps NoSuchHostedZone to its modeled exception')


def t_auth(e):
    expect_error(lambda: e.client(secret='wrong-secret').get_hosted_zone(Id=ZONE),
                 'SignatureDoesNotMatch', 403, 'The request signature we calculated does not match',
                 'wrong secret key')
    expect_error(lambda: e.client(akid='AKIDUNKNOWN').get_hosted_zone(Id=ZONE),
                 'InvalidClientTokenId', 403, what='unknown access key')
    expect_error(lambda: e.client(token='sometoken').get_hosted_zone(Id=ZONE),
                 'InvalidClientTokenId', 403, what='token where none is configured')
    st, _, body = e.raw('GET', f'/2013-04-01/hostedzone/{ZONE}', sign=False)
    T.check(st == 403 and '<Code>MissingAuthenticationToken</Code>' in body,
            'no Authorization: MissingAuthenticationToken', body)
    # a signed request whose body was changed afterwards
    hdrs = e.signed_headers('POST', f'/2013-04-01/hostedzone/{ZONE}/rrset/', b'<a/>')
    st, _, body = e.raw('POST', f'/2013-04-01/hostedzone/{ZONE}/rrset/', b'<b/>', sign=False,
                        headers=hdrs)
    T.check(st == 403 and '<Code>SignatureDoesNotMatch</Code>' in body,
            'tampered body: SignatureDoesNotMatch', body)


def t_session_token(exe):
    e = Emu(exe, '--session-token', 'TOKEN/with+chars==')
    try:
        T.eq(e.client(token='TOKEN/with+chars==').get_hosted_zone(Id=ZONE)['HostedZone']['Id'],
             f'/hostedzone/{ZONE}', 'temporary credentials with the right token')
        expect_error(lambda: e.client().get_hosted_zone(Id=ZONE), 'InvalidClientTokenId', 403,
                     what='token missing')
        expect_error(lambda: e.client(token='other').get_hosted_zone(Id=ZONE),
                     'InvalidClientTokenId', 403, what='wrong token')
    finally:
        T.eq(e.stop(), 0, 'clean exit')


def t_limits(e):
    c = e.client()
    icb = 'InvalidChangeBatch'
    # 100 weighted record sets per name and type; the 101st is refused
    change(c, *[('CREATE', rrs('many.example.com', [f'10.5.{i // 250}.{i % 250}'],
                               sid=f's{i}', weight=1)) for i in range(100)])
    expect_error(lambda: change(c, ('CREATE', rrs('many.example.com', ['10.6.0.1'], sid='s100',
                                                  weight=1))),
                 icb, 400, 'Exceeded limit on number of weighted RRSets', '101st weighted set')
    T.eq(len([r for r in e.rrsets() if r['name'] == 'many.example.com.']), 100,
         '100 weighted sets stored')
    # 400 values per record set
    change(c, ('CREATE', rrs('v400.example.com', [f'10.7.{i // 200}.{i % 200}'
                                                  for i in range(400)])))
    expect_error(lambda: change(c, ('CREATE', rrs('v401.example.com',
                                                  [f'10.7.{i // 200}.{i % 200}'
                                                   for i in range(401)]))),
                 icb, 400, 'Cannot have more than 400 records', '401 values')
    # Weight 0..255 is a schema facet: InvalidInput
    expect_error(lambda: change(c, ('CREATE', rrs('w.example.com', ['10.0.0.1'], sid='a',
                                                  weight=256))),
                 'InvalidInput', 400, "maxInclusive '255'", 'Weight 256')
    expect_error(lambda: change(c, ('CREATE', rrs('t.example.com', ['10.0.0.1'],
                                                  ttl=2147483648))),
                 'InvalidInput', 400, "maxInclusive '2147483647'", 'TTL 2^31')
    expect_error(lambda: change(c, ('CREATE', rrs('w.example.com', ['10.0.0.1'], sid='x' * 129,
                                                  weight=1))),
                 'InvalidInput', 400, "maxLength '128'", 'SetIdentifier of 129 characters')
    # record values must parse for their type
    expect_error(lambda: change(c, ('CREATE', rrs('bad.example.com', ['1.2.3']))), icb, 400,
                 "ARRDATAIllegalIPv4Address (Value is not a valid IPv4 address) encountered with "
                 "'1.2.3'", 'bad A value')
    expect_error(lambda: change(c, ('CREATE', rrs('bad.example.com', ['2001:db8::1']))), icb,
                 400, 'ARRDATAIllegalIPv4Address', 'AAAA value in an A record')
    expect_error(lambda: change(c, ('CREATE', rrs('bad.example.com', ['10.0.0.1'],
                                                  type_='AAAA'))), icb, 400,
                 'AAAARRDATAIllegalIPv6Address', 'A value in an AAAA record')
    expect_error(lambda: change(c, ('CREATE', rrs('bad.example.com', ['10.0.0.1', '10.0.0.1']))),
                 icb, 400, "Duplicate Resource Record: '10.0.0.1'", 'duplicate value')
    # 1,000 ResourceRecord elements per request
    expect_error(lambda: change(c, *[('CREATE', rrs(f'big{k}.example.com',
                                                    [f'10.8.{i // 200}.{i % 200}'
                                                     for i in range(334)]))
                                     for k in range(3)]),
                 icb, 400, 'Number of records limit of 1000 exceeded.', '1,002 elements')
    # UPSERT counts twice: 504 elements pass as CREATE, fail as UPSERT (1,008)
    sets = [rrs(f'dbl{k}.example.com', [f'10.9.{i // 200}.{i % 200}' for i in range(168)])
            for k in range(3)]
    expect_error(lambda: change(c, *[('UPSERT', s) for s in sets]), icb, 400,
                 'Number of records limit of 1000 exceeded.', 'UPSERT of 504 elements')
    change(c, *[('CREATE', s) for s in sets])
    T.check(True, 'CREATE of the same 504 elements passes')
    # 32,000 characters of values, UPSERT counted twice
    txt = [rrs('txt.example.com', [f'"{i:03d}' + 'x' * 95 + '"' for i in range(170)],
               type_='TXT')]
    expect_error(lambda: change(c, ('UPSERT', txt[0])), icb, 400,
                 'RDATA character limit of 32000 exceeded.', 'UPSERT of 17,000 characters')
    change(c, ('CREATE', txt[0]))
    T.check(True, 'CREATE of the same 17,000 characters passes')
    # names must be inside the zone
    expect_error(lambda: change(c, ('CREATE', rrs('www.other.org', ['10.0.0.1']))), icb, 400,
                 'RRSet with DNS name www.other.org. is not permitted in zone example.com.',
                 'name of another zone')
    expect_error(lambda: change(c, ('CREATE', rrs('notexample.com', ['10.0.0.1']))), icb, 400,
                 'is not permitted in zone example.com.', 'name sharing a suffix only')
    expect_error(lambda: change(c, ('CREATE', rrs('a..example.com', ['10.0.0.1']))), icb, 400,
                 'DomainLabelEmpty', 'empty label')


def t_batch_rules(e):
    c = e.client()
    icb = 'InvalidChangeBatch'
    # atomic: one bad change, nothing applied
    expect_error(lambda: change(c, ('CREATE', rrs('ok.example.com', ['10.0.0.1'])),
                                ('DELETE', rrs('missing.example.com', ['10.0.0.2']))),
                 icb, 400, 'but it was not found', 'batch with one bad change')
    T.eq([r for r in e.rrsets() if r['name'] == 'ok.example.com.'], [],
         'the good change of a failed batch was not applied')
    # a batch may touch a record set twice only as DELETE then CREATE
    r1 = rrs('twice.example.com', ['10.0.0.1'], sid='a', weight=1)
    expect_error(lambda: change(c, ('UPSERT', r1), ('UPSERT', r1)), icb, 400,
                 'The request contains an invalid set of changes for a resource record set',
                 'UPSERT twice')
    change(c, ('CREATE', r1))
    expect_error(lambda: change(c, ('CREATE', r1), ('DELETE', r1)), icb, 400,
                 'invalid set of changes', 'CREATE then DELETE')
    # weighted and non-weighted sets of one name and type do not mix
    expect_error(lambda: change(c, ('CREATE', rrs('twice.example.com', ['10.0.0.5']))), icb, 400,
                 'cannot be created as other RRSets exist with the same name and type',
                 'simple next to weighted')
    change(c, ('CREATE', rrs('plain.example.com', ['10.0.0.5'])))
    expect_error(lambda: change(c, ('CREATE', rrs('plain.example.com', ['10.0.0.6'], sid='w',
                                                  weight=1))), icb, 400,
                 'non-weighted set exists', 'weighted next to simple')
    # weighted sets of a group share one TTL
    expect_error(lambda: change(c, ('CREATE', rrs('twice.example.com', ['10.0.0.2'], ttl=300,
                                                  sid='b', weight=1))), icb, 400,
                 'weighted sets must contain the same TTL', 'weighted TTL mismatch')
    # SetIdentifier and Weight go together; TTL and values are required
    expect_error(lambda: change(c, ('CREATE', {'Name': 'x.example.com', 'Type': 'A',
                                               'SetIdentifier': 's', 'TTL': 60,
                                               'ResourceRecords': [{'Value': '10.0.0.1'}]})),
                 'InvalidInput', 400, what='SetIdentifier without Weight')
    expect_error(lambda: change(c, ('CREATE', {'Name': 'x.example.com', 'Type': 'A',
                                               'ResourceRecords': [{'Value': '10.0.0.1'}]})),
                 'InvalidInput', 400, 'Expected exactly one of [AliasTarget', 'no TTL')
    expect_error(lambda: change(c, ('CREATE', {'Name': 'x.example.com', 'Type': 'A',
                                               'SetIdentifier': 's', 'Failover': 'PRIMARY',
                                               'TTL': 60,
                                               'ResourceRecords': [{'Value': '10.0.0.1'}]})),
                 'InvalidInput', 400, 'r53emu does not emulate Failover', 'failover record')
    # CNAME rules and the apex
    change(c, ('CREATE', rrs('cn.example.com', ['target.example.net'], type_='CNAME')))
    expect_error(lambda: change(c, ('CREATE', rrs('cn.example.com', ['10.0.0.1']))), icb, 400,
                 'conflicting RRSet of type  CNAME', 'A next to CNAME')
    expect_error(lambda: change(c, ('DELETE', {'Name': 'example.com', 'Type': 'SOA', 'TTL': 900,
                                               'ResourceRecords': [{'Value': r['values'][0]}
                                                                   for r in e.rrsets()
                                                                   if r['type'] == 'SOA']})),
                 icb, 400, 'exactly one SOA', 'deleting the SOA')


def t_weighted_ttl(e):
    """Every weighted set of a group shares one TTL, judged per change against the zone as the
    batch's earlier changes left it (tests/r53emu/README.md)."""
    c = e.client()
    icb = 'InvalidChangeBatch'
    w = lambda sid, ttl, v='10.0.0.1', t='A': rrs('wt.example.com', [v], ttl=ttl, type_=t,  # noqa
                                                   sid=sid, weight=1)
    change(c, ('CREATE', w('a', 60)), ('CREATE', w('b', 60, '10.0.0.2')))
    ex = expect_error(lambda: change(c, ('CREATE', w('c', 300, '10.0.0.3'))), icb, 400,
                      what='CREATE with another TTL')
    if ex:
        T.eq(ex.response['Error']['Message'],
             '[RRSet with DNS name wt.example.com. and type A, SetIdentifier c cannot be created '
             'as weighted sets must contain the same TTL.]', 'the message Route 53 sends')
    expect_error(lambda: change(c, ('UPSERT', w('a', 300))), icb, 400,
                 'weighted sets must contain the same TTL', 'UPSERT of one set to another TTL')
    # pair by pair: the first CREATE still meets b at 60
    expect_error(lambda: change(c, ('DELETE', w('a', 60)), ('CREATE', w('a', 300)),
                                ('DELETE', w('b', 60, '10.0.0.2')),
                                ('CREATE', w('b', 300, '10.0.0.2'))),
                 icb, 400, 'SetIdentifier a cannot be created', 'DELETE+CREATE pairs')
    T.eq(sorted((r['set_identifier'], r['ttl']) for r in e.rrsets()
                if r['name'] == 'wt.example.com.'), [('a', 60), ('b', 60)],
         'a refused batch changes nothing')
    # every DELETE first, then every CREATE: the group moves to the new TTL at once
    change(c, ('DELETE', w('a', 60)), ('DELETE', w('b', 60, '10.0.0.2')),
           ('CREATE', w('a', 300)), ('CREATE', w('b', 300, '10.0.0.2')))
    T.eq(sorted((r['set_identifier'], r['ttl']) for r in e.rrsets()
                if r['name'] == 'wt.example.com.'), [('a', 300), ('b', 300)],
         'DELETE all, then CREATE all with a new TTL')
    # a CREATE before the DELETEs that empty the group is judged against the old sets
    expect_error(lambda: change(c, ('CREATE', w('c', 30, '10.0.0.3')),
                                ('DELETE', w('a', 300)), ('DELETE', w('b', 300, '10.0.0.2'))),
                 icb, 400, 'SetIdentifier c cannot be created', 'CREATE before the DELETEs')
    change(c, ('DELETE', w('a', 300)), ('DELETE', w('b', 300, '10.0.0.2')),
           ('CREATE', w('c', 30, '10.0.0.3')))
    T.eq([(r['set_identifier'], r['ttl']) for r in e.rrsets() if r['name'] == 'wt.example.com.'],
         [('c', 30)], 'CREATE after the DELETEs that emptied the group')
    # other types are other groups; a DELETE never breaks the rule
    change(c, ('CREATE', w('c', 600, '2001:db8::1', 'AAAA')))
    change(c, ('CREATE', w('d', 30, '10.0.0.4')))
    change(c, ('DELETE', w('c', 30, '10.0.0.3')))
    T.eq(sorted((r['type'], r['set_identifier'], r['ttl']) for r in e.rrsets()
                if r['name'] == 'wt.example.com.'), [('A', 'd', 30), ('AAAA', 'c', 600)],
         'A and AAAA groups keep their own TTLs')


def t_icb_shapes(e):
    c = e.client()
    dup = rrs('shape.example.com', ['10.0.0.1'])
    change(c, ('CREATE', dup))
    e.faults(icb_shape='envelope')
    xml_req = (f'<ChangeResourceRecordSetsRequest xmlns="https://route53.amazonaws.com/doc/'
               f'2013-04-01/"><ChangeBatch><Changes><Change><Action>CREATE</Action>'
               f'<ResourceRecordSet><Name>shape.example.com</Name><Type>A</Type><TTL>60</TTL>'
               f'<ResourceRecords><ResourceRecord><Value>10.0.0.1</Value></ResourceRecord>'
               f'</ResourceRecords></ResourceRecordSet></Change><Change><Action>DELETE</Action>'
               f'<ResourceRecordSet><Name>gone.example.com</Name><Type>A</Type><TTL>60</TTL>'
               f'<ResourceRecords><ResourceRecord><Value>10.0.0.2</Value></ResourceRecord>'
               f'</ResourceRecords></ResourceRecordSet></Change></Changes></ChangeBatch>'
               f'</ChangeResourceRecordSetsRequest>').encode()
    path = f'/2013-04-01/hostedzone/{ZONE}/rrset/'
    st, hdrs, text = e.raw('POST', path, xml_req)
    root = ET.fromstring(text)
    T.eq((st, root.tag, root.find(f'{NS}Error/{NS}Code').text),
         (400, f'{NS}ErrorResponse', 'InvalidChangeBatch'), 'envelope shape')
    msg = root.find(f'{NS}Error/{NS}Message').text
    T.eq(msg, "[Tried to create resource record set [name='shape.example.com.', type='A'] but it "
              "already exists, Tried to delete resource record set [name='gone.example.com.', "
              "type='A'] but it was not found]", 'both problems in one bracketed list')
    T.eq(root.find(f'{NS}RequestId').text, hdrs.get('x-amzn-RequestId'),
         'RequestId element equals the x-amzn-RequestId header')
    T.eq(hdrs.get('Content-Type'), 'text/xml', 'errors are text/xml')

    e.faults(icb_shape='root')
    st, hdrs, text = e.raw('POST', path, xml_req)
    root = ET.fromstring(text)
    T.eq((st, root.tag), (400, f'{NS}InvalidChangeBatch'), 'root shape')
    T.eq([m.text for m in root.findall(f'{NS}Messages/{NS}Message')],
         ["Tried to create resource record set [name='shape.example.com.', type='A'] but it "
          "already exists",
          "Tried to delete resource record set [name='gone.example.com.', type='A'] but it was "
          "not found"], 'one Message per problem')
    T.check(root.find(f'{NS}RequestId') is not None, 'root shape carries RequestId')
    # What botocore 1.29 makes of each shape (it has no InvalidChangeBatch customization: the
    # root shape parses with an empty Code, the messages under response['Messages'])
    try:
        change(c, ('CREATE', dup))
        T.check(False, 'root shape: expected an error')
    except ClientError as ex:
        code = ex.response['Error']['Code']
        msgs = ex.response.get('Messages', {}).get('Message')
        T.check(code in ('', 'InvalidChangeBatch'), 'root shape: botocore code', repr(code))
        T.check(msgs is not None and 'already exists' in str(msgs),
                'root shape: messages readable from the parsed response', repr(ex.response))
        T.eq(ex.response['ResponseMetadata']['HTTPStatusCode'], 400, 'root shape: status 400')
    e.faults(icb_shape='envelope')
    try:
        change(c, ('CREATE', dup))
        T.check(False, 'envelope: expected an error')
    except c.exceptions.InvalidChangeBatch as ex:
        T.eq(ex.response['Error']['Code'], 'InvalidChangeBatch',
             'envelope: botocore raises its modeled InvalidChangeBatch')


def t_schema(e):
    path = f'/2013-04-01/hostedzone/{ZONE}/rrset'  # also without the trailing slash
    ns = 'https://route53.amazonaws.com/doc/2013-04-01/'

    def doc(rrset, root='ChangeResourceRecordSetsRequest', xmlns=ns, extra=''):
        return (f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{xmlns}">{extra}'
                f'<ChangeBatch><Changes><Change><Action>CREATE</Action><ResourceRecordSet>'
                f'{rrset}</ResourceRecordSet></Change></Changes></ChangeBatch></{root}>'
                ).encode()

    ok = ('<Name>schema.example.com</Name><Type>A</Type><SetIdentifier>s</SetIdentifier>'
          '<Weight>3</Weight><TTL>60</TTL><ResourceRecords><ResourceRecord><Value>10.0.0.1'
          '</Value></ResourceRecord></ResourceRecords>')
    st, _, text = e.raw('POST', path, doc(ok))
    T.check(st == 200 and '<Status>PENDING</Status>' in text,
            'hand-written request in API Reference order, no trailing slash', text)

    def bad(body, code, part, what):
        st, _, text = e.raw('POST', path, body)
        try:
            root = ET.fromstring(text)
            got = (root.find(f'{NS}Error/{NS}Code').text, root.find(f'{NS}Error/{NS}Message').text)
        except (ET.ParseError, AttributeError):
            got = (None, text)
        T.check(st == 400 and got[0] == code and part in got[1], what, f'{st} {got}')

    bad(doc('<Name>s2.example.com</Name><Type>A</Type><Weight>3</Weight>'
            '<SetIdentifier>s</SetIdentifier><TTL>60</TTL><ResourceRecords><ResourceRecord>'
            '<Value>10.0.0.1</Value></ResourceRecord></ResourceRecords>'),
        'InvalidInput', "cvc-complex-type.2.4.a: Invalid content was found starting with element "
        "'SetIdentifier'", 'Weight before SetIdentifier')
    bad(doc('<Name>s2.example.com</Name><TTL>60</TTL><Type>A</Type>'),
        'InvalidInput', f'One of \'{{"{ns}":Type}}\' is expected', 'TTL before Type')
    bad(doc(ok.replace('<TTL>60</TTL>', '<TTL>60</TTL><Color>red</Color>')),
        'InvalidInput', "starting with element 'Color'", 'unknown element')
    bad(doc(ok, xmlns='https://route53.amazonaws.com/doc/2012-02-29/'),
        'InvalidInput', "cvc-elt.1: Cannot find the declaration of element "
        "'ChangeResourceRecordSetsRequest'", 'old namespace')
    bad(doc(ok, root='ChangeBatchRequest'), 'MalformedInput',
        'ChangeBatchRequest is not valid, expected ChangeResourceRecordSetsRequest', 'wrong root')
    bad(f'<ChangeResourceRecordSetsRequest xmlns="{ns}"><ChangeBatch><Changes/></ChangeBatch>'
        f'</ChangeResourceRecordSetsRequest>'.encode(), 'InvalidInput',
        "cvc-complex-type.2.4.b: The content of element 'Changes' is not complete", 'no Change')
    bad(doc(ok.replace('<Type>A</Type>', '<Type>A</Type>stray')), 'InvalidInput',
        'cvc-complex-type.2.3', 'text in element-only content')
    bad(doc(ok.replace('<Type>A</Type>', '<Type>BOGUS</Type>')), 'InvalidInput',
        "cvc-enumeration-valid: Value 'BOGUS'", 'unknown type')
    bad(doc(ok.replace('<Weight>3</Weight>', '<Weight>three</Weight>')), 'InvalidInput',
        "'three' is not a valid value for 'integer'", 'weight not a number')
    bad(doc(ok.replace('<Name>', '<Name lang="en">')), 'InvalidInput',
        "Attribute 'lang' is not allowed", 'attribute')
    bad(b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "x">]>' + doc(ok)[38:], 'InvalidInput',
        'DOCTYPE is disallowed', 'DTD')
    bad(doc(ok)[:-10], 'InvalidInput', 'Invalid XML ;', 'truncated document')
    bad(doc(ok.replace('<TTL>60</TTL>', '<TTL>60</TTL><HealthCheckId>hc</HealthCheckId>')
            .replace('<ResourceRecords>', '').replace('</ResourceRecords>', '')),
        'InvalidInput', "starting with element 'ResourceRecord'", 'ResourceRecord out of place')
    # the PUT of a correct document again is CREATE of an existing set
    st, _, text = e.raw('POST', path + '/', doc(ok))
    T.check(st == 400 and 'already exists' in text, 'trailing slash form reaches the same zone',
            text)
    st, _, text = e.raw('DELETE', f'/2013-04-01/hostedzone/{ZONE}/rrset/')
    T.check(st == 404 and 'UnknownOperationException' in text, 'unsupported operation', text)


def t_xml_order(e):
    c = e.client()
    # botocore writes members in the caller's dict order: this one puts TTL before Type
    unordered = {'Name': 'order.example.com', 'TTL': 60, 'Type': 'A',
                 'ResourceRecords': [{'Value': '10.0.0.1'}]}
    expect_error(lambda: change(c, ('CREATE', unordered)), 'InvalidInput', 400,
                 "Invalid content was found starting with element 'TTL'",
                 'strict order (default): a boto3 dict out of API order is refused')
    e.faults(xml_order='lenient')
    change(c, ('CREATE', unordered))
    T.eq([r['name'] for r in e.rrsets() if r['name'] == 'order.example.com.'],
         ['order.example.com.'], 'xml_order=lenient accepts any member order')
    expect_error(lambda: change(c, ('CREATE', {'Name': 'o2.example.com', 'Type': 'A',
                                               'TTL': 60})), 'InvalidInput', 400,
                 what='lenient order still checks occurrences and content')
    e.faults(xml_order='strict')


def t_throttling(e):
    c = e.client()
    e.faults(rate=1, burst=3)
    outcomes = []
    for _ in range(6):
        try:
            c.get_hosted_zone(Id=ZONE)
            outcomes.append('ok')
        except ClientError as ex:
            outcomes.append(ex.response['Error']['Code'])
            if ex.response['Error']['Code'] == 'Throttling':
                T.eq(ex.response['Error']['Message'], 'Rate exceeded', 'Throttling message')
                T.eq(ex.response['ResponseMetadata']['HTTPStatusCode'], 400, 'Throttling is 400')
    T.eq(outcomes[:3], ['ok'] * 3, 'burst of 3 passes')
    T.check('Throttling' in outcomes[3:], 'then Throttling', str(outcomes))
    T.check(e.control('GET', 'stats')[1]['throttled'] >= 1, 'stats count throttled calls')
    time.sleep(1.1)
    T.eq(c.get_hosted_zone(Id=ZONE)['HostedZone']['Id'], f'/hostedzone/{ZONE}',
         'the bucket refills')
    e.faults(rate=0)
    e.faults(force={'throttle': 1})
    expect_error(lambda: c.get_hosted_zone(Id=ZONE), 'Throttling', 400, 'Rate exceeded',
                 'injected Throttling')
    # botocore's standard retry mode retries Throttling: a 2-attempt client gets through
    e.faults(force={'throttle': 1})
    T.eq(e.client(attempts=2).get_hosted_zone(Id=ZONE)['HostedZone']['Id'],
         f'/hostedzone/{ZONE}', 'standard retries absorb one Throttling')


def t_change_throttling(e):
    """The 2026 model: requests and record changes are separate buckets; either one empty
    answers 400 Throttling "Rate exceeded", and a refused batch changes nothing."""
    c = e.client()
    mk = lambda n, k=1: rrs(f'{n}.example.com', [f'10.0.0.{i}' for i in range(1, k + 1)])  # noqa
    e.control('POST', 'reset-stats')
    e.faults(change_rate=0.5, change_burst=4)
    change(c, ('CREATE', mk('ct1')), ('CREATE', mk('ct2')), ('CREATE', mk('ct3')))
    expect_error(lambda: change(c, ('CREATE', mk('ct4')), ('CREATE', mk('ct5'))), 'Throttling',
                 400, 'Rate exceeded', 'two changes with one token left')
    T.eq([r['name'] for r in e.rrsets() if r['name'].startswith('ct')],
         ['ct1.example.com.', 'ct2.example.com.', 'ct3.example.com.'],
         'a batch refused for its changes is not applied')
    T.eq(c.get_hosted_zone(Id=ZONE)['HostedZone']['Id'], f'/hostedzone/{ZONE}',
         'reads are not charged to the change bucket')
    change(c, ('CREATE', mk('ct4')))
    st = e.control('GET', 'stats')[1]
    T.eq((st['throttled'], st['throttled_changes']), (1, 1), 'stats count change throttling')
    # a batch larger than the bucket passes when it is full and leaves it in debt
    e.faults(change_rate=2, change_burst=4)
    change(c, *[('CREATE', mk(f'big{i}')) for i in range(6)])
    expect_error(lambda: change(c, ('CREATE', mk('big6'))), 'Throttling', 400, 'Rate exceeded',
                 'the bucket in debt after a batch larger than it')
    # change_unit=records counts ResourceRecord elements
    e.faults(change_rate=0.5, change_burst=4, change_unit='records')
    change(c, ('CREATE', mk('cr1', 3)))
    expect_error(lambda: change(c, ('CREATE', mk('cr2', 2))), 'Throttling', 400,
                 'Rate exceeded', 'records: two values with one token left')
    e.faults(change_unit='changes')
    change(c, ('CREATE', mk('cr2', 2)))
    e.faults(change_rate=0)
    # the request bucket still applies to every call: 10/s with a burst of 50 passes 50 at once
    e.faults(rate=0.5, burst=50)
    ok = 0
    for _ in range(50):
        c.get_hosted_zone(Id=ZONE)
        ok += 1
    T.eq(ok, 50, 'a burst of 50 passes')
    expect_error(lambda: c.get_hosted_zone(Id=ZONE), 'Throttling', 400, 'Rate exceeded',
                 'the 51st is throttled')
    e.faults(rate=0)


def t_retry_after(e):
    path = f'/2013-04-01/hostedzone/{ZONE}'
    st, hdrs, _ = e.raw('GET', path)
    T.eq((st, {k.lower() for k in hdrs} & {'x-amz-retry-after'}), (200, set()),
         'no x-amz-retry-after on success')
    e.faults(rate=0.5, burst=1, retry_after='auto')
    e.raw('GET', path)
    st, hdrs, body = e.raw('GET', path)
    ra = {k.lower(): v for k, v in hdrs.items()}.get('x-amz-retry-after')
    T.check(st == 400 and 'Throttling' in body and ra and 1 <= int(ra) <= 2000,
            'auto: the time until the bucket admits the call', f'{st} {ra} {body}')
    e.faults(rate=0, retry_after=250, force={'throttle': 1})
    st, hdrs, body = e.raw('GET', path)
    ra = {k.lower(): v for k, v in hdrs.items()}.get('x-amz-retry-after')
    T.eq((st, ra), (400, '250'), 'a fixed value on an injected Throttling')
    e.faults(retry_after=0, force={'throttle': 1})
    st, hdrs, body = e.raw('GET', path)
    T.eq((st, {k.lower() for k in hdrs} & {'x-amz-retry-after'}), (400, set()),
         'retry_after 0: no header')


def t_faults(e):
    c = e.client()
    mk = lambda n: rrs(f'{n}.example.com', ['10.0.0.1'])  # noqa: E731
    e.faults(force={'err5xx': 1})
    try:
        change(c, ('CREATE', mk('f5xx')))
        T.check(False, 'err5xx: expected an error')
    except ClientError as ex:
        T.check(ex.response['ResponseMetadata']['HTTPStatusCode'] in (500, 503) and
                ex.response['Error']['Code'] in ('InternalFailure', 'ServiceUnavailable'),
                'err5xx: 500 InternalFailure or 503 ServiceUnavailable', repr(ex.response))
    T.eq([r for r in e.rrsets() if r['name'] == 'f5xx.example.com.'], [],
         'err5xx happens before the change is applied')
    e.faults(force={'prior': 1})
    expect_error(lambda: change(c, ('CREATE', mk('fprior'))), 'PriorRequestNotComplete', 400,
                 'still processing a prior request')
    T.eq([r for r in e.rrsets() if r['name'] == 'fprior.example.com.'], [],
         'PriorRequestNotComplete happens before the change is applied')
    e.faults(force={'reset': 1})
    try:
        change(c, ('CREATE', mk('freset')))
        T.check(False, 'reset: expected a connection error')
    except (botocore.exceptions.ConnectionClosedError, botocore.exceptions.HTTPClientError,
            botocore.exceptions.EndpointConnectionError):
        T.check(True, 'reset: the client sees a dropped connection')
    T.eq([r for r in e.rrsets() if r['name'] == 'freset.example.com.'], [],
         'reset happens before the change is applied')
    e.faults(force={'reset_after_apply': 1})
    try:
        change(c, ('CREATE', mk('fafter')))
        T.check(False, 'reset_after_apply: expected a connection error')
    except (botocore.exceptions.ConnectionClosedError, botocore.exceptions.HTTPClientError,
            botocore.exceptions.EndpointConnectionError):
        T.check(True, 'reset_after_apply: the client sees a dropped connection')
    T.eq(len([r for r in e.rrsets() if r['name'] == 'fafter.example.com.']), 1,
         'reset_after_apply: the change was applied anyway')
    expect_error(lambda: change(c, ('CREATE', mk('fafter'))), 'InvalidChangeBatch', 400,
                 'already exists', 'a blind retry of the lost CREATE fails')
    st = e.control('GET', 'stats')[1]
    T.check(all(st['faults'][k] >= 1 for k in ('err5xx', 'prior', 'reset', 'reset_after_apply')),
            'stats count injected faults', json.dumps(st['faults']))
    T.check(st['calls']['ChangeResourceRecordSets'].get('reset_after_apply') == 1,
            'stats by action and outcome', json.dumps(st['calls']))
    # latency is added to every call
    e.faults(latency_ms=250)
    t0 = time.monotonic()
    c.get_hosted_zone(Id=ZONE)
    T.check(time.monotonic() - t0 >= 0.25, 'latency_ms delays the answer')
    e.faults(latency_ms=0)


def outcome_sequence(exe, seed):
    e = Emu(exe, '--seed', str(seed), '--faults', 'err5xx=0.25,throttle=0.2,reset=0.1')
    seq = []
    try:
        c = e.client()
        for _ in range(40):
            try:
                c.get_hosted_zone(Id=ZONE)
                seq.append('ok')
            except ClientError as ex:
                seq.append(ex.response['Error']['Code'])
            except botocore.exceptions.BotoCoreError:
                seq.append('reset')
    finally:
        e.stop()
    return seq


def t_determinism(exe):
    a, b = outcome_sequence(exe, 42), outcome_sequence(exe, 42)
    T.eq(a, b, 'the same --seed gives the same faults')
    T.check(len(set(a)) >= 3, 'several kinds of faults were drawn', str(a))


def t_concurrency(e):
    e.faults(latency_ms=300)
    path = f'/2013-04-01/hostedzone/{ZONE}'
    n = 300
    barrier = threading.Barrier(n)

    def one(_):
        hdrs = e.signed_headers('GET', path)
        barrier.wait(30)
        return e.raw('GET', path, sign=False, headers=hdrs)[0]

    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        statuses = list(pool.map(one, range(n)))
    elapsed = time.monotonic() - t0
    e.faults(latency_ms=0)
    T.eq(statuses.count(200), n, f'{n} concurrent delayed calls all answered')
    T.check(elapsed < 20, 'delayed calls overlap (suspended, not blocking workers)',
            f'{elapsed:.1f}s')


def t_control(e):
    c = e.client()
    st, body = e.control('POST', f'zones/{ZONE}/rrsets',
                         {'upsert': [{'name': 'Console.example.com', 'type': 'A', 'ttl': 60,
                                      'set_identifier': 'human', 'weight': 5,
                                      'values': ['10.10.0.1', '10.10.0.2']}]})
    T.eq((st, body), (200, {'upserted': 1, 'deleted': 0}), 'direct write')
    got = [r for r in c.list_resource_record_sets(HostedZoneId=ZONE)['ResourceRecordSets']
           if r['Name'] == 'console.example.com.']
    T.eq([(r['SetIdentifier'], r['Weight'], r['TTL']) for r in got], [('human', 5, 60)],
         'direct write visible through the API')
    expect_error(lambda: change(c, ('DELETE', rrs('console.example.com', ['10.10.0.1'],
                                                  sid='human', weight=5))),
                 'InvalidChangeBatch', 400, 'do not match', 'a console edit breaks a stale CAS')
    change(c, ('DELETE', rrs('console.example.com', ['10.10.0.2', '10.10.0.1'], sid='human',
                             weight=5)))
    st, body = e.control('POST', f'zones/{ZONE}/rrsets',
                         [{'name': 'x.other.org', 'type': 'A', 'values': ['10.0.0.1']}])
    T.eq(st, 400, 'direct write outside the zone is refused')
    st, body = e.control('POST', f'zones/{ZONE}/rrsets',
                         {'delete': [{'name': 'nothing.example.com', 'type': 'A'}]})
    T.eq((st, body['deleted']), (200, 0), 'direct delete of nothing')
    T.eq(e.control('GET', 'zones/ZNOPE')[0], 404, 'unknown zone in the control API')
    st, body = e.control('POST', 'faults', {'err5xx': 2})
    T.eq(st, 400, 'fault probabilities above 1 are refused')
    st, body = e.control('POST', 'faults', {'bogus': 1})
    T.eq(st, 400, 'unknown fault keys are refused')
    st, stats = e.control('GET', 'stats')
    T.check(stats['calls_total'] > 0 and stats['changes_applied'] >= 1 and
            stats['direct_writes'] >= 1, 'stats', json.dumps(stats))
    e.control('POST', 'reset-stats')
    st, stats = e.control('GET', 'stats')
    T.eq((stats['calls_total'], stats['changes_applied']), (0, 0), 'reset-stats')
    old = rrs('count.example.com', ['10.11.0.1', '10.11.0.2'], sid='n', weight=1)
    change(c, ('CREATE', old))
    change(c, ('DELETE', old), ('CREATE', rrs('count.example.com', ['10.11.0.1', '10.11.0.2',
                                                                    '10.11.0.3'],
                                              sid='n', weight=1)))
    expect_error(lambda: change(c, ('DELETE', old)), 'InvalidChangeBatch', 400,
                 what='a refused DELETE')
    st, stats = e.control('GET', 'stats')
    T.eq((stats['changes_applied'], stats['change_items_applied'], stats['records_applied'],
          stats['records_deleted']), (2, 3, 7, 2),
         'stats count values of applied changes and of their DELETEs (refused ones not)')
    e.control('POST', 'reset-stats')
    st, stats = e.control('GET', 'stats')
    T.eq((stats['records_applied'], stats['records_deleted']), (0, 0), 'reset-stats (records)')
    T.eq(e.control('GET', f'zones/{OTHER}')[1]['name'], 'other.org.', 'second zone')


def t_sigterm_dump(exe):
    fd, dump = tempfile.mkstemp(prefix='r53emu-dump-', suffix='.json')
    os.close(fd)
    e = Emu(exe, '--state-dump', dump, '--faults', 'icb_shape=root,latency_ms=0')
    try:
        kept = rrs('kept.example.com', ['10.0.0.7'], sid='k', weight=9)
        change(e.client(), ('CREATE', kept))
        st, _, text = e.raw('POST', f'/2013-04-01/hostedzone/{ZONE}/rrset/',
                            CREATE_KEPT)
        T.check(st == 400 and '<InvalidChangeBatch' in text and 'already exists' in text,
                '--faults icb_shape=root selects the root shape', text)
    finally:
        rc = e.stop()
    T.eq(rc, 0, 'SIGTERM: clean exit')
    with open(dump) as f:
        state = json.load(f)
    os.unlink(dump)
    zone = [z for z in state['zones'] if z['id'] == ZONE][0]
    T.eq([r for r in zone['rrsets'] if r['name'] == 'kept.example.com.'],
         [{'name': 'kept.example.com.', 'type': 'A', 'set_identifier': 'k', 'weight': 9,
           'ttl': 60, 'values': ['10.0.0.7']}], 'state dump holds the record set')
    T.eq(state['stats']['changes_applied'], 1, 'state dump holds the stats')


def t_bad_flags(exe):
    base = ['--zone', f'{ZONE}:example.com', '--access-key', AKID, '--secret-key', SECRET]
    for args, what in (([], 'no arguments'),
                       (['--zone', 'Z1:example.com'], 'no credentials'),
                       (base + ['--listen', '10.0.0.1:0'], 'non-loopback listen address'),
                       (base + ['--rate', 'fast'], 'bad rate'),
                       (base + ['--faults', 'err5xx=2'], 'bad fault probability'),
                       (base + ['--faults', 'nope=1'], 'unknown fault'),
                       (base + ['--zone', 'bad id:example.com'], 'bad zone id'),
                       (base + ['--bogus'], 'unknown flag')):
        p = subprocess.run([exe] + args, capture_output=True, timeout=10)
        T.check(p.returncode == 2 and p.stderr, f'bad flags exit 2 with a message: {what}',
                f'rc={p.returncode} {p.stderr!r}')


def main():
    exe = os.path.abspath(sys.argv[1])
    e = Emu(exe, '--insync-after-ms', '300')
    try:
        for name, fn in ((('get_hosted_zone', t_get_hosted_zone)),
                         ('create_weighted_and_get_change', t_create_weighted_and_get_change),
                         ('cas_delete_create', t_cas_delete_create),
                         ('cas_names_every_stale_set', t_cas_names_every_stale_set),
                         ('upsert_and_create_existing', t_upsert_and_create_existing),
                         ('paging', t_paging),
                         ('paging_faults', t_paging_faults),
                         ('no_such_zone', t_no_such_zone),
                         ('auth', t_auth),
                         ('limits', t_limits),
                         ('batch_rules', t_batch_rules),
                         ('weighted_ttl', t_weighted_ttl),
                         ('icb_shapes', t_icb_shapes),
                         ('schema', t_schema),
                         ('xml_order', t_xml_order),
                         ('throttling', t_throttling),
                         ('change_throttling', t_change_throttling),
                         ('retry_after', t_retry_after),
                         ('faults', t_faults),
                         ('concurrency', t_concurrency),
                         ('control', t_control)):
            e.reset()
            T.run(name, fn, e)
    finally:
        rc = e.stop()
        T.current = 'shutdown'
        T.eq(rc, 0, 'shared emulator: clean exit on SIGTERM')
    T.run('session_token', t_session_token, exe)
    T.run('determinism', t_determinism, exe)
    T.run('sigterm_dump', t_sigterm_dump, exe)
    T.run('bad_flags', t_bad_flags, exe)
    T.finish()


if __name__ == '__main__':
    main()
