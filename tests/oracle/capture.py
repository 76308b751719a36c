#!/usr/bin/env python3
"""Turn neutral cases (the oracle's format, ../shared/flink-oracle/FORMAT.md)
into regression cases of `tests/oracle_regressions.rs`, with Apache Flink's
own output as the expectation.

usage: CEPHEID_BIN=target/release/cepheid \
       python3 tests/oracle/capture.py CASES.jsonl [--force]

Each input line is a neutral case plus:
  "name":      folder name under tests/oracle/cases/
  "note":      what the case shows (one or two sentences)
  "deviation": (optional) the docs/semantics.md rule by which cepheid
               deliberately differs from Flink here; the expectation is then
               cepheid's current output, and Flink's is kept beside it.

Writes tests/oracle/cases/NAME/{pattern.cep, events.jsonl, expected.json}.
Needs the Flink oracle (see ../shared/flink-oracle/README.md); the tests that
read the cases need neither Flink nor ../shared.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ORACLE = os.path.join(HERE, '..', '..', '..', 'shared', 'flink-oracle')
sys.path.insert(0, ORACLE)

import oracle_lib as ol  # noqa: E402


def outputs(res):
    if res.get('error'):
        return {'error': res['error'].strip().splitlines()[0]}
    if res.get('runtime_error'):
        return {'runtime_error': res['runtime_error'].strip().splitlines()[0]}
    clean = lambda st: {k: v for k, v in st.items() if v}
    return {
        'matches': sorted((clean(m['stages']) for m in res['matches']), key=ol.canon),
        'timeouts': sorted(({'stages': clean(t['stages']), 'ts': t.get('ts')} for t in res['timeouts']),
                           key=lambda t: ol.canon(t['stages']) + '@%s' % t['ts']),
    }


def rename_stages(out, rename):
    if 'matches' not in out:
        return out
    ren = lambda st: {rename.get(k, k): v for k, v in st.items()}
    return {
        'matches': [ren(m) for m in out['matches']],
        'timeouts': [{'stages': ren(t['stages']), 'ts': t['ts']} for t in out['timeouts']],
    }


def main():
    args = [a for a in sys.argv[1:] if not a.startswith('--')]
    force = '--force' in sys.argv
    binary = os.path.abspath(ol.cepheid_bin())
    os.chdir(ORACLE)
    flink = ol.Flink()
    try:
        for line in open(args[0]):
            if not line.strip():
                continue
            case = json.loads(line)
            name = case.pop('name')
            note = case.pop('note')
            deviation = case.pop('deviation', None)
            case.setdefault('id', name)
            out_dir = os.path.join(HERE, 'cases', name)
            if os.path.exists(out_dir) and not force:
                print('exists, skipped (--force to overwrite):', name)
                continue
            fl = outputs(flink.run(ol.harness_case(case)))
            ce_raw = ol.run_cepheid(case, binary)
            ce = outputs(ce_raw)
            text, rename = ol.to_cepheid(case)
            # Stage names as the cepheid pattern spells them.
            expected = rename_stages(dict(ce if deviation else fl), rename)
            if 'runtime_error' in expected:
                sys.exit('%s: cannot expect a runtime error: %s' % (name, expected))
            if not deviation and fl != ce:
                print('NOTE %s: cepheid differs from Flink today:\n  flink   %s\n  cepheid %s'
                      % (name, json.dumps(fl), json.dumps(ce)))
            os.makedirs(out_dir, exist_ok=True)
            text = '\n'.join(l for l in text.splitlines() if not l.startswith('// conformance case'))
            with open(os.path.join(out_dir, 'pattern.cep'), 'w') as f:
                f.write('// %s\n' % note)
                f.write(text.rstrip() + '\n')
            with open(os.path.join(out_dir, 'events.jsonl'), 'w') as f:
                f.write(ol.events_text(case))
            record = {'note': note, 'deviation': deviation, 'expected': expected,
                      'flink': fl, 'neutral': case}
            with open(os.path.join(out_dir, 'expected.json'), 'w') as f:
                json.dump(record, f, indent=1, sort_keys=True)
                f.write('\n')
            print('wrote', name)
    finally:
        flink.close()


if __name__ == '__main__':
    main()
