#!/usr/bin/env python3
"""The example IAM policy (deploy/iam-policy.json) lets r53reg do what it does and no more:
ChangeResourceRecordSets limited to CREATE/DELETE of A/AAAA records under the record name and
the two sibling names the provider writes (_down.<name>, _draining.<name>: the health and
drain states), and the read calls it makes. A policy missing a sibling would make every
health move fail with AccessDenied in production while every test here passed."""
import json
import sys

policy = json.load(open(sys.argv[1]))
failures = []
checked = 0


def check(cond, what):
    global checked
    checked += 1
    if not cond:
        failures.append(what)
        print('FAIL', what)


stmts = policy['Statement']
change = [s for s in stmts if s.get('Action') == 'route53:ChangeResourceRecordSets']
check(len(change) == 1, 'one statement allows ChangeResourceRecordSets')
if change:
    cond = change[0]['Condition']['ForAllValues:StringEquals']
    names = cond['route53:ChangeResourceRecordSetsNormalizedRecordNames']
    base = [n for n in names if not n.startswith('_')]
    check(len(base) == 1, 'one record name')
    if base:
        want = {base[0], '_down.' + base[0], '_draining.' + base[0]}
        check(set(names) == want, f'the names are {sorted(want)}, got {sorted(names)}')
    check(set(cond['route53:ChangeResourceRecordSetsRecordTypes']) == {'A', 'AAAA'},
          'types A and AAAA only')
    check(set(cond['route53:ChangeResourceRecordSetsActions']) == {'CREATE', 'DELETE'},
          'CREATE and DELETE only (r53reg never UPSERTs)')
actions = set()
for s in stmts:
    a = s['Action']
    actions.update(a if isinstance(a, list) else [a])
check(actions == {'route53:ChangeResourceRecordSets', 'route53:ListResourceRecordSets',
                  'route53:GetHostedZone', 'route53:GetChange'},
      f'exactly the four calls r53reg makes, got {sorted(actions)}')
print(f'{checked - len(failures)} checks passed, {len(failures)} failed')
sys.exit(1 if failures else 0)
