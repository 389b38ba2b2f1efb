#!/usr/bin/python3
"""Alias record sets and the resolver of r53emu, driven by boto3 (real botocore XML).

usage: /usr/bin/python3 test_alias.py path/to/r53emu

Alias records with Route 53's rules (tests/r53emu/README.md "Alias records"), the records-per-
zone quota, --refuse-dangling-alias and GET /_emu/resolve. Prints 'N passed, M failed' last;
exits non-zero on any failure.
"""
import sys

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree

import math  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402
import urllib.parse  # noqa: E402
import xml.etree.ElementTree as ET  # noqa: E402

from emutest import OTHER, ZONE, Emu  # noqa: E402
from test_boto3 import NS, T, change, expect_error, rrs  # noqa: E402

ICB = 'InvalidChangeBatch'
NSURI = 'https://route53.amazonaws.com/doc/2013-04-01/'


def alias(name, target, sid=None, weight=None, type_='A', zone=ZONE, eth=False):
    """An alias ResourceRecordSet in API Reference order (AliasTarget after Weight)."""
    rr = {'Name': name, 'Type': type_}
    if sid is not None:
        rr['SetIdentifier'] = sid
        rr['Weight'] = weight
    rr['AliasTarget'] = {'HostedZoneId': zone, 'DNSName': target, 'EvaluateTargetHealth': eth}
    return rr


def not_found(target, type_='A', zone=ZONE):
    return (f'Tried to create an alias that targets {target}, type {type_} in zone {zone}, but '
            f'that target was not found')


def outside(target, type_='A', zone=ZONE):
    return (f'Tried to create an alias that targets {target}, type {type_} in zone {zone}, but '
            f'the alias target name does not lie within the target zone')


def icb_message(fn, what):
    """The bracketed InvalidChangeBatch message of a refused call (None if it passed)."""
    ex = expect_error(fn, ICB, 400, what=what)
    return ex.response['Error']['Message'] if ex else None


def listed(c, name):
    sets = c.list_resource_record_sets(HostedZoneId=ZONE)['ResourceRecordSets']
    return [r for r in sets if r['Name'] == name]


def resolve(e, name, type_='A', **kw):
    q = urllib.parse.urlencode(dict(name=name, type=type_, **kw))
    return e.control('GET', f'resolve?{q}')


def children(c, shard, weights, ttl=60, type_='A'):
    """CREATE the weighted plain group <shard>.shard.example.com: child i has weight weights[i]
    and the value 10.<shard+1>.0.<i+1>."""
    change(c, *[('CREATE', rrs(f'{shard}.shard.example.com', [f'10.{shard + 1}.0.{i + 1}'],
                               ttl=ttl, type_=type_, sid=f'c{i}', weight=w))
                for i, w in enumerate(weights)])


# --- creating aliases -----------------------------------------------------------------------

def t_create(e):
    c = e.client()
    children(c, 0, [1, 1])
    change(c, ('CREATE', alias('svc.example.com', '0.shard.example.com', sid='p0', weight=1)))
    T.eq([r['SetIdentifier'] for r in listed(c, 'svc.example.com.')], ['p0'],
         'alias to an existing target')
    msg = icb_message(lambda: change(c, ('CREATE', alias('svc.example.com', 'nope.example.com',
                                                          sid='p1', weight=1))),
                      'alias to a missing target')
    T.eq(msg, f'[{not_found("nope.example.com.")}]', 'missing target: the message')
    # the target must have the alias's type
    change(c, ('CREATE', rrs('v6.example.com', ['2001:db8::1'], type_='AAAA')))
    msg = icb_message(lambda: change(c, ('CREATE', alias('a6.example.com', 'v6.example.com'))),
                      'A alias to a name holding AAAA only')
    T.eq(msg, f'[{not_found("v6.example.com.")}]', 'the type is part of the target')
    change(c, ('CREATE', alias('a6.example.com', 'v6.example.com', type_='AAAA')))
    T.check(True, 'AAAA alias to the AAAA target')
    # outside the zone: both messages in one list
    msg = icb_message(lambda: change(c, ('CREATE', alias('out.example.com', 'www.other.org'))),
                      'DNSName outside the zone')
    T.eq(msg, f'[{outside("www.other.org.")}, {not_found("www.other.org.")}]',
         'outside the zone: both messages, in this order')
    # another hosted zone's id: that zone does not hold the name, and aliases stay in the zone
    msg = icb_message(lambda: change(c, ('CREATE', alias('out.example.com', '0.shard.example.com',
                                                          zone=OTHER))),
                      'HostedZoneId of another zone')
    T.eq(msg, f'[{outside("0.shard.example.com.", zone=OTHER)}, '
              f'{not_found("0.shard.example.com.", zone=OTHER)}]', 'another zone: both messages')
    # alias XOR TTL+ResourceRecords (InvalidInput, before any batch rule)
    with_ttl = alias('ttl.example.com', '0.shard.example.com')
    with_ttl['TTL'] = 60  # API order: TTL before AliasTarget
    with_ttl['AliasTarget'] = with_ttl.pop('AliasTarget')
    expect_error(lambda: change(c, ('CREATE', with_ttl)), 'InvalidInput', 400,
                 'Invalid request: Expected exactly one of [AliasTarget, all of [TTL, and '
                 'ResourceRecords], or TrafficPolicyInstanceId], but found more than one in '
                 'Change with [Action=CREATE, Name=ttl.example.com., Type=A, SetIdentifier=null]',
                 'alias with TTL')
    both = rrs('both.example.com', ['10.0.0.1'])
    both['AliasTarget'] = alias('x', '0.shard.example.com')['AliasTarget']
    expect_error(lambda: change(c, ('CREATE', both)), 'InvalidInput', 400,
                 'but found more than one', 'alias with TTL and ResourceRecords')
    T.eq(listed(c, 'ttl.example.com.') + listed(c, 'out.example.com.'), [],
         'refused aliases were not stored')
    # a chain: an alias may target an alias
    change(c, ('CREATE', alias('chain.example.com', 'svc.example.com')))
    T.eq(len(listed(c, 'chain.example.com.')), 1, 'alias to an alias')


def t_schema(e):
    path = f'/2013-04-01/hostedzone/{ZONE}/rrset/'
    change(e.client(), ('CREATE', rrs('t.example.com', ['10.0.0.1'])))

    def doc(target, extra=''):
        return (f'<ChangeResourceRecordSetsRequest xmlns="{NSURI}"><ChangeBatch><Changes><Change>'
                f'<Action>CREATE</Action><ResourceRecordSet><Name>s.example.com</Name><Type>A'
                f'</Type><SetIdentifier>s</SetIdentifier><Weight>1</Weight>{extra}<AliasTarget>'
                f'{target}</AliasTarget></ResourceRecordSet></Change></Changes></ChangeBatch>'
                f'</ChangeResourceRecordSetsRequest>').encode()

    def bad(body, part, what):
        st, _, text = e.raw('POST', path, body)
        root = ET.fromstring(text)
        got = (root.find(f'{NS}Error/{NS}Code').text, root.find(f'{NS}Error/{NS}Message').text)
        T.check(st == 400 and got[0] == 'InvalidInput' and part in got[1], what, f'{st} {got}')

    hz, dn, eth = (f'<HostedZoneId>{ZONE}</HostedZoneId>', '<DNSName>t.example.com</DNSName>',
                   '<EvaluateTargetHealth>false</EvaluateTargetHealth>')
    st, _, text = e.raw('POST', path, doc(hz + dn + eth))
    T.check(st == 200, 'hand-written weighted alias in API Reference order', text)
    bad(doc(hz + dn), "Invalid XML ; cvc-complex-type.2.4.b: The content of element "
        f"'AliasTarget' is not complete. One of '{{\"{NSURI}\":EvaluateTargetHealth}}' is "
        "expected.", 'EvaluateTargetHealth missing')
    bad(doc(eth + hz + dn), "Invalid XML ; cvc-complex-type.2.4.a: Invalid content was found "
        f"starting with element 'EvaluateTargetHealth'. One of '{{\"{NSURI}\":HostedZoneId}}' "
        "is expected.", 'EvaluateTargetHealth first')
    bad(doc(dn + eth), "cvc-complex-type.2.4.a: Invalid content was found starting with element "
        "'DNSName'", 'HostedZoneId missing')
    bad(doc('<HostedZoneId>' + 'Z' * 33 + '</HostedZoneId>' + dn + eth),
        "Invalid XML ; cvc-maxLength-valid: Value '" + 'Z' * 33 + "' with length = '33' is not "
        "facet-valid with respect to maxLength '32' for type 'ResourceId'.",
        'HostedZoneId of 33 characters')
    bad(doc(hz + dn + '<EvaluateTargetHealth>no</EvaluateTargetHealth>'),
        "'no' is not a valid value for 'boolean'", 'EvaluateTargetHealth not a boolean')
    bad(doc(hz + dn + eth).replace(b'</AliasTarget>', b'</AliasTarget><TTL>60</TTL>'),
        "Invalid content was found starting with element 'TTL'", 'TTL after AliasTarget')


def t_batch_order(e):
    c = e.client()
    tgt = rrs('0.shard.example.com', ['10.1.0.1'], sid='c0', weight=1)
    ali = alias('svc.example.com', '0.shard.example.com', sid='p0', weight=1)
    msg = icb_message(lambda: change(c, ('CREATE', ali), ('CREATE', tgt)),
                      'alias first, then its target, in one batch')
    T.eq(msg, f'[{not_found("0.shard.example.com.")}]', 'alias-first: target was not found')
    T.eq(listed(c, '0.shard.example.com.'), [], 'the refused batch applied nothing')
    change(c, ('CREATE', tgt), ('CREATE', ali))
    T.eq([len(listed(c, n)) for n in ('0.shard.example.com.', 'svc.example.com.')], [1, 1],
         'target first, then the alias, in one batch')
    # a target UPSERTed after the alias counts as missing, even though it exists
    ali2 = alias('svc.example.com', '0.shard.example.com', sid='p1', weight=1)
    tgt2 = rrs('0.shard.example.com', ['10.1.0.9'], sid='c0', weight=1)
    msg = icb_message(lambda: change(c, ('CREATE', ali2), ('UPSERT', tgt2)),
                      'alias, then an UPSERT of its existing target')
    T.eq(msg, f'[{not_found("0.shard.example.com.")}]', 'UPSERT later: target was not found')
    change(c, ('UPSERT', tgt2), ('CREATE', ali2))
    T.eq(len(listed(c, 'svc.example.com.')), 2, 'UPSERT of the target first, then the alias')
    # deleting a target an alias uses is not refused by default (Route 53 unknown)
    change(c, ('DELETE', tgt2))
    T.eq(listed(c, '0.shard.example.com.'), [], 'target deleted under its alias (default)')


def t_list_and_delete(e):
    c = e.client()
    children(c, 0, [1])
    change(c, ('CREATE', alias('svc.example.com', '0.SHARD.Example.COM', sid='p0', weight=7)))
    got = listed(c, 'svc.example.com.')
    T.eq(len(got), 1, 'one alias listed')
    if got:
        r = got[0]
        T.eq(r.get('AliasTarget'), {'HostedZoneId': ZONE, 'DNSName': '0.shard.example.com.',
                                    'EvaluateTargetHealth': False},
             'AliasTarget: id as stored, DNSName lowercase with a trailing dot')
        T.check('TTL' not in r and 'ResourceRecords' not in r, 'no TTL, no ResourceRecords',
                repr(r))
        T.eq((r['SetIdentifier'], r['Weight']), ('p0', 7), 'SetIdentifier and Weight')
    st, _, text = e.raw('GET', f'/2013-04-01/hostedzone/{ZONE}/rrset?name=svc.example.com&'
                        'type=A&maxitems=1')
    T.check(st == 200 and '<Weight>7</Weight><AliasTarget><HostedZoneId>' in text and
            '<EvaluateTargetHealth>false</EvaluateTargetHealth></AliasTarget>'
            '</ResourceRecordSet>' in text and '<TTL>' not in text, 'raw XML of the alias', text)
    view = [r for r in e.rrsets() if r['name'] == 'svc.example.com.']
    T.eq(view, [{'name': 'svc.example.com.', 'type': 'A', 'set_identifier': 'p0', 'weight': 7,
                 'alias_target': {'hosted_zone_id': ZONE, 'dns_name': '0.shard.example.com.',
                                  'evaluate_target_health': False}}],
         '/_emu/zones view of the alias')
    T.eq(c.get_hosted_zone(Id=ZONE)['HostedZone']['ResourceRecordSetCount'], 4,
         'ResourceRecordSetCount counts the alias')
    # DELETE must give the AliasTarget exactly
    for wrong, what in ((alias('svc.example.com', '0.shard.example.com', sid='p0', weight=7,
                               eth=True), 'EvaluateTargetHealth'),
                        (alias('svc.example.com', '0.shard.example.com', sid='p0', weight=6),
                         'Weight'),
                        (alias('svc.example.com', '1.shard.example.com', sid='p0', weight=7),
                         'DNSName'),
                        (alias('svc.example.com', '0.shard.example.com', sid='p0', weight=7,
                               zone=f'/hostedzone/{ZONE}'), 'HostedZoneId spelled otherwise'),
                        (rrs('svc.example.com', ['10.1.0.1'], sid='p0', weight=7),
                         'values instead of the alias')):
        msg = icb_message(lambda: change(c, ('DELETE', wrong)), f'DELETE with another {what}')
        T.eq(msg, "[Tried to delete resource record set [name='svc.example.com.', type='A', "
                  "set-identifier='p0'] but the values provided do not match the current "
                  "values]", f'another {what}: do not match')
    change(c, ('DELETE', alias('svc.example.com', '0.Shard.EXAMPLE.com.', sid='p0', weight=7)))
    T.eq(listed(c, 'svc.example.com.'), [], 'DELETE: DNSName case and trailing dot do not matter')
    # a plain set is not deleted by an alias DELETE either
    msg = icb_message(lambda: change(c, ('DELETE', alias('0.shard.example.com', 'x.example.com',
                                                          sid='c0', weight=1))),
                      'alias DELETE of a plain set')
    T.check(msg is not None and 'do not match' in msg, 'alias DELETE of a plain set: no match',
            repr(msg))
    # a direct write can hold an alias too
    st, body = e.control('POST', f'zones/{ZONE}/rrsets',
                         [{'name': 'human.example.com', 'type': 'A', 'set_identifier': 'h',
                           'weight': 1, 'alias_target': {'hosted_zone_id': ZONE,
                                                         'dns_name': '0.shard.example.com'}}])
    T.eq(st, 200, 'direct write of an alias')
    T.eq(listed(c, 'human.example.com.')[0].get('AliasTarget', {}).get('DNSName'),
         '0.shard.example.com.', 'direct-write alias listed')


def t_groups(e):
    c = e.client()
    children(c, 0, [1])
    change(c, ('CREATE', rrs('mix.example.com', ['10.9.0.1'], ttl=60, sid='plain', weight=1)),
           ('CREATE', alias('mix.example.com', '0.shard.example.com', sid='ali', weight=1)))
    T.eq(sorted(r['SetIdentifier'] for r in listed(c, 'mix.example.com.')), ['ali', 'plain'],
         'a weighted group mixing alias and non-alias sets is accepted')
    # the same-TTL rule compares the non-alias members only
    change(c, ('CREATE', rrs('mix.example.com', ['10.9.0.2'], ttl=60, sid='plain2', weight=1)))
    T.check(True, 'plain set with the group TTL next to an alias')
    expect_error(lambda: change(c, ('CREATE', rrs('mix.example.com', ['10.9.0.3'], ttl=300,
                                                  sid='plain3', weight=1))), ICB, 400,
                 'SetIdentifier plain3 cannot be created as weighted sets must contain the same '
                 'TTL', 'another TTL among the plain members is still refused')
    change(c, ('CREATE', alias('onlyalias.example.com', '0.shard.example.com', sid='a',
                               weight=1)),
           ('CREATE', rrs('onlyalias.example.com', ['10.9.0.4'], ttl=300, sid='p', weight=1)))
    change(c, ('DELETE', rrs('onlyalias.example.com', ['10.9.0.4'], ttl=300, sid='p', weight=1)),
           ('CREATE', rrs('onlyalias.example.com', ['10.9.0.4'], ttl=5, sid='p', weight=1)))
    T.check(True, 'an alias imposes no TTL on its group')
    # simple alias next to weighted sets: the usual mixing rule
    expect_error(lambda: change(c, ('CREATE', alias('mix.example.com', '0.shard.example.com'))),
                 ICB, 400, 'cannot be created as other RRSets exist with the same name and type',
                 'simple alias next to weighted sets')
    # 100 weighted sets per group, aliases included
    change(c, *[('CREATE', rrs('full.example.com', [f'10.8.0.{i}'], sid=f'p{i}', weight=1))
                for i in range(50)])
    change(c, *[('CREATE', alias('full.example.com', '0.shard.example.com', sid=f'a{i}',
                                 weight=1)) for i in range(50)])
    T.eq(len(listed(c, 'full.example.com.')), 100, '50 plain + 50 alias sets: 100 stored')
    expect_error(lambda: change(c, ('CREATE', alias('full.example.com', '0.shard.example.com',
                                                    sid='a50', weight=1))),
                 ICB, 400, 'Exceeded limit on number of weighted RRSets for full.example.com., '
                 'type A in this zone.', '101st set, an alias')
    expect_error(lambda: change(c, ('CREATE', rrs('full.example.com', ['10.8.1.1'], sid='p50',
                                                  weight=1))),
                 ICB, 400, 'Exceeded limit on number of weighted RRSets', '101st set, plain')


def t_element_count(e):
    c = e.client()
    children(c, 0, [1])
    limit = 'Number of records limit of 1000 exceeded.'

    def aliases(n, tag, action='CREATE'):
        return [(action, alias(f'{tag}{i}.example.com', '0.shard.example.com'))
                for i in range(n)]

    expect_error(lambda: change(c, *aliases(1001, 'a')), ICB, 400, limit,
                 'CREATE of 1,001 aliases')
    expect_error(lambda: change(c, *aliases(501, 'u', 'UPSERT')), ICB, 400, limit,
                 'UPSERT of 501 aliases (1,002 elements)')
    change(c, *aliases(500, 'u', 'UPSERT'))
    T.check(True, 'UPSERT of 500 aliases (1,000 elements)')
    vals = [rrs(f'v{k}.example.com', [f'10.7.{k}.{i}' for i in range(200)]) for k in range(4)]
    expect_error(lambda: change(c, *[('CREATE', v) for v in vals], *aliases(201, 'm')), ICB, 400,
                 limit, '800 values + 201 aliases')
    change(c, *[('CREATE', v) for v in vals], *aliases(200, 'm'))
    T.check(True, '800 values + 200 aliases')


def t_quota(exe):
    e = Emu(exe, '--max-records', '10')
    try:
        c = e.client()
        quota = f'Exceeded limit on number of RRSets in hosted zone {ZONE} (limit 10).'
        change(c, *[('CREATE', rrs(f'q{i}.example.com', ['10.0.0.1'])) for i in range(7)])
        change(c, ('CREATE', alias('qa.example.com', 'q0.example.com')))
        T.eq(c.get_hosted_zone(Id=ZONE)['HostedZone']['ResourceRecordSetCount'], 10,
             'SOA + NS + 7 plain + 1 alias = 10')
        msg = icb_message(lambda: change(c, ('CREATE', alias('qb.example.com',
                                                              'q0.example.com'))),
                          'an 11th record set (alias)')
        T.eq(msg, f'[{quota}]', 'the quota message')
        expect_error(lambda: change(c, ('CREATE', rrs('q7.example.com', ['10.0.0.1']))), ICB,
                     400, quota, 'an 11th record set (plain)')
        change(c, ('DELETE', rrs('q6.example.com', ['10.0.0.1'])),
               ('CREATE', alias('qb.example.com', 'q0.example.com')))
        T.check(True, 'a batch that keeps the count at the quota passes')
        T.eq(e.control('GET', f'zones/{OTHER}')[1]['name'], 'other.org.', 'the quota is per zone')
        change(c, *[('CREATE', rrs(f'o{i}.other.org', ['10.0.0.1'])) for i in range(8)],
               zone=OTHER)
        T.check(True, 'another zone has its own 10')
    finally:
        T.eq(e.stop(), 0, 'clean exit')
    # the default is 10,000: fill the zone by direct write, then one more through the API
    e = Emu(exe)
    try:
        c = e.client()
        st, _ = e.control('POST', f'zones/{ZONE}/rrsets',
                          [{'name': f'f{i}.example.com', 'type': 'A', 'values': ['10.0.0.1']}
                           for i in range(9998)])
        T.eq(st, 200, 'direct write of 9,998 record sets')
        expect_error(lambda: change(c, ('CREATE', rrs('more.example.com', ['10.0.0.1']))), ICB,
                     400, 'Exceeded limit on number of RRSets in hosted zone Z123ABC (limit '
                     '10000).', 'default quota 10,000')
        change(c, ('UPSERT', rrs('f0.example.com', ['10.0.0.2'])))
        T.check(True, 'an UPSERT of an existing set at the quota passes')
    finally:
        T.eq(e.stop(), 0, 'clean exit')


def t_refuse_dangling(exe):
    e = Emu(exe, '--refuse-dangling-alias')
    try:
        c = e.client()
        tgt = rrs('0.shard.example.com', ['10.1.0.1'], sid='c0', weight=1)
        tgt2 = rrs('0.shard.example.com', ['10.1.0.2'], sid='c1', weight=1)
        ali = alias('svc.example.com', '0.shard.example.com', sid='p0', weight=1)
        change(c, ('CREATE', tgt), ('CREATE', tgt2), ('CREATE', ali))
        change(c, ('DELETE', tgt2))
        T.check(True, 'deleting one set of the target group passes')
        msg = icb_message(lambda: change(c, ('DELETE', tgt)), 'deleting the last target set')
        T.eq(msg, "[Tried to delete resource record set [name='0.shard.example.com.', type='A', "
                  "set-identifier='c0'] but it is the target of the alias resource record set "
                  "[name='svc.example.com.', type='A', set-identifier='p0']]",
             'the dangling-alias message')
        change(c, ('DELETE', ali), ('DELETE', tgt))
        T.eq([r['name'] for r in e.rrsets() if r['name'].endswith('.example.com.') and
              r['type'] == 'A'], [], 'alias and target deleted together')
    finally:
        T.eq(e.stop(), 0, 'clean exit')


# --- the resolver -----------------------------------------------------------------------------

TREE = {'p0': 1, 'p1': 3}                    # svc.example.com -> <i>.shard.example.com
SHARDS = [[1, 1], [2, 0, 6]]                 # child weights per shard
EXACT_RECORDS = {'p0/c0': 1 / 8, 'p0/c1': 1 / 8, 'p1/c0': 3 / 16, 'p1/c2': 9 / 16}


def build_tree(c):
    for s, weights in enumerate(SHARDS):
        children(c, s, weights)
    change(c, ('UPSERT', rrs('0.shard.example.com', ['10.1.0.2', '10.1.0.3'], sid='c1',
                             weight=1)))
    change(c, *[('CREATE', alias('svc.example.com', f'{i}.shard.example.com', sid=f'p{i}',
                                 weight=w)) for i, w in enumerate(TREE.values())])


def t_resolve_exact(e):
    c = e.client()
    build_tree(c)
    st, r = resolve(e, 'SVC.example.com', exact=1)
    T.eq(st, 200, 'exact resolve answers')
    T.eq((r['name'], r['type'], r['exact'], r['no_answer']), ('svc.example.com.', 'A', True, 0.0),
         'exact: name, type, no_answer')
    T.check(r['records'].keys() == EXACT_RECORDS.keys() and
            all(math.isclose(r['records'][k], v) for k, v in EXACT_RECORDS.items()),
            'exact record shares are the products of the weight shares', repr(r['records']))
    want = {'10.1.0.1': 1 / 8, '10.1.0.2': 1 / 8, '10.1.0.3': 1 / 8, '10.2.0.1': 3 / 16,
            '10.2.0.3': 9 / 16}
    T.check(r['answers'].keys() == want.keys() and
            all(math.isclose(r['answers'][k], v) for k, v in want.items()),
            'exact IP shares (weight 0 never answers; a two-value record answers both)',
            repr(r['answers']))
    T.check(math.isclose(r['ttls'].get('60', 0), 1.0), 'answers carry the child TTL',
            repr(r['ttls']))


def t_resolve_sampled(e):
    c = e.client()
    build_tree(c)
    n = 200000
    st, r = resolve(e, 'svc.example.com', n=n, seed=7)
    T.eq((st, r['n'], r['no_answer']), (200, n, 0), 'sampled: n queries, all answered')
    for path, p in EXACT_RECORDS.items():
        got, sd = r['records'].get(path, 0), math.sqrt(n * p * (1 - p))
        T.check(abs(got - n * p) <= 5 * sd, f'{path} drawn about {p:.4f} of the time',
                f'{got} vs {n * p:.0f} +- {5 * sd:.0f}')
    T.eq(sum(r['records'].values()), n, 'every query chose one leaf')
    T.eq(r['answers'].get('10.1.0.2'), r['records'].get('p0/c1'),
         'each value of the chosen record is counted')
    T.check('10.2.0.2' not in r['answers'], 'weight 0 next to non-zero weights never answers')
    T.eq(resolve(e, 'svc.example.com', n=n, seed=7)[1], r, 'the same seed gives the same counts')
    T.check(resolve(e, 'svc.example.com', n=n, seed=8)[1]['records'] != r['records'],
            'another seed gives other counts')
    t0 = time.monotonic()
    st, big = resolve(e, 'svc.example.com', n=10000000, seed=1)
    elapsed = time.monotonic() - t0
    print(f'    10,000,000 queries: {elapsed:.2f}s', flush=True)
    T.check(st == 200 and sum(big['records'].values()) == 10000000,
            '10,000,000 queries in one call', f'{st} {elapsed:.1f}s')


def t_resolve_rules(e):
    c = e.client()
    # every weight 0: all chosen equally, at both levels
    children(c, 0, [0, 0])
    change(c, *[('CREATE', alias('zero.example.com', '0.shard.example.com', sid=f'z{i}',
                                 weight=0)) for i in range(2)])
    st, r = resolve(e, 'zero.example.com', exact=1)
    T.check(st == 200 and all(math.isclose(v, 0.25) for v in r['records'].values()) and
            len(r['records']) == 4, 'all weights 0: every path equally likely', repr(r))
    # missing names and types: no answer
    st, r = resolve(e, 'missing.example.com', n=50)
    T.eq((st, r['no_answer'], r['answers'], r['records']), (200, 50, {}, {}),
         'a missing name: no answer')
    T.eq(resolve(e, '0.shard.example.com', 'AAAA', exact=1)[1]['no_answer'], 1.0,
         'a missing type: no answer')
    # an alias whose target is gone answers nothing for its share
    change(c, ('CREATE', rrs('t.example.com', ['10.3.0.1'])),
           ('CREATE', alias('half.example.com', 't.example.com', sid='a', weight=1)),
           ('CREATE', rrs('half.example.com', ['10.3.0.2'], sid='b', weight=1)))
    change(c, ('DELETE', rrs('t.example.com', ['10.3.0.1'])))
    st, r = resolve(e, 'half.example.com', exact=1)
    T.eq((r['no_answer'], r['answers']), (0.5, {'10.3.0.2': 0.5}), 'a dangling alias: no answer')
    st, r = resolve(e, 'half.example.com', n=1000, seed=3)
    T.eq(r['no_answer'] + r['answers'].get('10.3.0.2', 0), 1000,
         'sampled: answered + no_answer = n')
    T.check(abs(r['no_answer'] - 500) <= 80, 'sampled: about half the queries get no answer',
            repr(r))
    # chains: 8 alias hops resolve, 9 are refused; a loop is refused
    change(c, ('CREATE', rrs('l9.example.com', ['10.4.0.9'])))
    for i in range(8, -1, -1):
        change(c, ('CREATE', alias(f'l{i}.example.com', f'l{i + 1}.example.com')))
    st, r = resolve(e, 'l1.example.com', exact=1)
    T.eq((st, r.get('answers'), r.get('records')),
         (200, {'10.4.0.9': 1.0}, {'l1.example.com./l2.example.com./l3.example.com./'
                                   'l4.example.com./l5.example.com./l6.example.com./'
                                   'l7.example.com./l8.example.com./l9.example.com.': 1.0}),
         'a chain of 8 alias hops resolves (simple sets are named by their name)')
    st, r = resolve(e, 'l0.example.com', n=10)
    T.check(st == 400 and 'alias chain longer than 8 hops' in r.get('error', ''),
            '9 alias hops: an error', f'{st} {r}')
    change(c, ('CREATE', rrs('loopb.example.com', ['10.5.0.1'], sid='x', weight=1)),
           ('CREATE', alias('loopa.example.com', 'loopb.example.com', sid='x', weight=1)),
           ('CREATE', alias('loopb.example.com', 'loopa.example.com', sid='y', weight=1)))
    st, r = resolve(e, 'loopa.example.com', exact=1)
    T.check(st == 400 and 'or a loop' in r.get('error', ''), 'a loop: an error', f'{st} {r}')
    # parameters
    T.eq(resolve(e, 'x.example.com', n=0)[0], 400, 'n = 0 is refused')
    T.eq(e.control('GET', 'resolve?name=x.example.com')[0], 400, 'type is required')
    T.eq(resolve(e, 'x.example.com', 'BOGUS')[0], 400, 'unknown type')
    T.eq(resolve(e, 'www.nowhere.net')[0], 404, 'a name in no zone')


def main():
    exe = os.path.abspath(sys.argv[1])
    e = Emu(exe, '--seed', '11')
    try:
        for name, fn in (('create', t_create),
                         ('schema', t_schema),
                         ('batch_order', t_batch_order),
                         ('list_and_delete', t_list_and_delete),
                         ('groups', t_groups),
                         ('element_count', t_element_count),
                         ('resolve_exact', t_resolve_exact),
                         ('resolve_sampled', t_resolve_sampled),
                         ('resolve_rules', t_resolve_rules)):
            e.reset()
            T.run(name, fn, e)
    finally:
        rc = e.stop()
        T.current = 'shutdown'
        T.eq(rc, 0, 'shared emulator: clean exit on SIGTERM')
    T.run('quota', t_quota, exe)
    T.run('refuse_dangling', t_refuse_dangling, exe)
    T.finish()


if __name__ == '__main__':
    main()
