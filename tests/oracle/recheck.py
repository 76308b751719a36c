#!/usr/bin/env python3
"""Re-explain the disagreements a `diff.py --out DIR` run left UNEXPLAINED,
with cepheid's documented deviations (docs/semantics.md) applied the way
they actually work:

  D1  a `not followed by` ending a group: its condition is made never-true
      on BOTH sides (deleting it from cepheid's copy, as diff.py does, also
      deletes Flink's own partial enforcement of it, between repetitions and
      as a pending end, and breaks conditions that refer to it), and its own
      element window is dropped from cepheid's copy (enforced, a window
      larger than the pattern's is an error in cepheid; Flink drops the
      negation and never sees it);
  D2  element windows on groups, D3 on quantified elements: dropped from
      cepheid's copy (Flink ignores them);
  D4  deadline-ordered time: Flink run with `"tick": true`;
  LIMIT  the per-key limit on partial matches (`--max-runs-per-key`,
      docs/semantics.md): cepheid run with it raised out of reach. A
      variant made by D1 can hold far more partial matches than the case
      itself (a negation that never holds no longer prunes anything), so
      the limit is tried together with the others;
  D5  patterns Flink fails on at run time: cepheid's compile errors that
      say so (or Flink's own runtime error / time-out when cepheid rejects),
      also when a variant above is what cepheid rejects so (D3 dropping an
      element window can leave `greedy ... until` with no way out).

usage: CEPHEID_BIN=target/release/cepheid python3 tests/oracle/recheck.py DIR [ID...]
(with IDs: those cases, whatever diff.py's explainers said of them.) Prints, per disagreement, the smallest set of deviations that explains it,
and the cases nothing explains (those are bugs).
"""
import collections
import copy
import itertools
import json
import os
import stat
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ORACLE = os.path.join(HERE, '..', '..', '..', 'shared', 'flink-oracle')
sys.path.insert(0, ORACLE)

import diff  # noqa: E402
import oracle_lib as ol  # noqa: E402

NEVER = {'eq': ['kind', 'no event has this kind']}
# The D5 errors, as diff.py's D5_MESSAGES (their texts say when Flink fails).
D5_TEXT = ('can be reached before the pattern takes any event', 'looping group needs',
           'has no state to leave the loop to', 'cycle of moves', 'too ambiguous')


def d1(stages, windows=False):
    """`windows`: also drop the negations' own element windows (cepheid's
    copy: an enforced negation's window larger than the pattern's is an
    error there, where Flink, dropping the negation, never sees it)."""
    for st, _, _, _ in diff.walk(stages):
        g = st.get('group')
        if g:
            j = len(g) - 1
            while j >= 1 and g[j].get('contiguity') == 'not_followed_by':
                g[j]['where'] = NEVER
                if windows:
                    g[j].pop('within_prev_ms', None)
                j -= 1


def d23(stages):
    for st, _, _, _ in diff.walk(stages):
        if st.get('group') or st.get('quantifier'):
            st.pop('within_prev_ms', None)


def unlimited(binary):
    """A wrapper of `binary` whose `run` has no per-key limit in reach."""
    path = os.path.join(tempfile.mkdtemp(prefix='recheck-'), 'cepheid-unlimited')
    with open(path, 'w') as f:
        f.write('#!/bin/sh\nexec "%s" "$@" --max-runs-per-key 4000000000\n' % os.path.abspath(binary))
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
    return path


def run(runner, case, rules):
    fl_case, ce_case = copy.deepcopy(case), copy.deepcopy(case)
    if 'D1' in rules:
        d1(fl_case['pattern']['stages'])
        d1(ce_case['pattern']['stages'], windows=True)
    if 'D2/D3' in rules:
        d23(ce_case['pattern']['stages'])
    h = ol.harness_case(fl_case)
    if 'D4' in rules:
        h['tick'] = True
    fl = runner.flink.run(h)
    binary = runner.unlimited if 'LIMIT' in rules else runner.binary
    ce = ol.run_cepheid(ce_case, binary, runner.tmp)
    cat, detail = ol.compare(fl, ce)
    # A variant cepheid rejects for a pattern Flink fails on at run time
    # (D5: D3 dropping a window can leave `greedy ... until` with no state
    # to leave the loop to, which Flink meets only on some events).
    if cat == 'cepheid-invalid' and any(t in json.dumps(ce.get('error') or '') for t in D5_TEXT):
        return 'D5', detail
    return cat, detail


def main():
    out_dir = sys.argv[1]
    os.chdir(ORACLE)
    report = json.load(open(os.path.join(out_dir, 'report.json')))
    todo = set(sys.argv[2:]) or {
        cid for g in report['groups'] if not g['explanation'] for cid in g['cases']}
    cases = {}
    for line in open(os.path.join(out_dir, 'disagreeing-cases.jsonl')):
        c = json.loads(line)
        if c['case']['id'] in todo:
            cases[c['case']['id']] = c
    runner = diff.Runner(ol.cepheid_bin())
    runner.unlimited = unlimited(runner.binary)
    verdicts = collections.Counter()
    unexplained = []
    try:
        for cid, c in sorted(cases.items()):
            sig = c['signature']
            err = json.dumps(c.get('cepheid', {}).get('error') or '')
            if sig[0] == 'cepheid-invalid' and any(t in err for t in D5_TEXT):
                verdicts['D5 (cepheid rejects what Flink fails on at run time)'] += 1
                continue
            if sig[0] in ('flink-runtime-error', 'flink-crash'):
                if len(sig) > 2 and sig[2] == 'cepheid rejects':
                    verdicts['D5 (Flink fails at run time, cepheid rejects)'] += 1
                else:
                    verdicts['Flink failed or timed out, cepheid ran (no verdict)'] += 1
                continue
            found = None
            rules_all = ('D1', 'D2/D3', 'D4', 'LIMIT')
            for n in range(0, len(rules_all) + 1):
                for rules in itertools.combinations(rules_all, n):
                    cat, _ = run(runner, c['case'], rules)
                    if cat == 'D5' and rules:
                        found = rules + ('D5',)
                        break
                    if cat not in diff.DISAGREE:
                        found = rules
                        break
                if found is not None:
                    break
            if found == ():
                verdicts['agrees now (fixed since the run)'] += 1
            elif found:
                verdicts[' + '.join(found)] += 1
            else:
                verdicts['UNEXPLAINED'] += 1
                unexplained.append(cid)
    finally:
        runner.close()
    for k, v in verdicts.most_common():
        print('%6d  %s' % (v, k))
    if unexplained:
        print('unexplained:', ' '.join(unexplained))


if __name__ == '__main__':
    main()
