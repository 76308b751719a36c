#!/usr/bin/env python3
"""Writes the input streams of the golden cases under tests/golden/data/
from the repository's own inputs (run from the repository's root once; the
files are committed, so the cases never depend on this script again).

- sample.csv: examples/data/sample.jsonl as CSV (every field a column,
  absent fields empty cells).
- sample_at.jsonl: the sample with its time in `at` as RFC 3339 strings
  (`--time-field at`).
- sample_marked.jsonl: the sample with `$watermark` lines, blank lines and
  malformed lines among its events.
- crash.jsonl: tests/common/crash.rs's `events(1000)` (its generator, ported:
  windows with timeouts, disorder up to 3 s, a malformed line now and then).
- crash_rules.jsonl: crash.jsonl with control records a quarter, half and
  three quarters of the way, as cli_checkpoint.rs's test of changes of
  rules does (`$rules_file` changed.cep, `$rules_file` rules.cep, `$rules`
  with changed.cep's text inline), the rules in crash/.
- rules.jsonl: the stream of cli_rules.rs's rules (rules/old.cep), with a
  change to rules/new.cep inline, a broken set, a `$rules_file` back to
  old.cep and one outside the rules folder (refused).
- edges/: tests/time_extremes.rs's patterns and streams (windows that would
  end past the largest time, an event at the smallest).
"""
import csv, io, json, os, datetime

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, 'data')
ROOT = os.path.dirname(os.path.dirname(HERE))
M64 = (1 << 64) - 1


def write(name, text):
    with open(os.path.join(DATA, name), 'w', newline='') as f:
        f.write(text)


def sample():
    with open(os.path.join(ROOT, 'examples/data/sample.jsonl')) as f:
        return [l.rstrip('\n') for l in f if l.strip()]


def sample_csv(lines):
    events = [json.loads(l) for l in lines]
    fields = ['ts'] + sorted({k for e in events for k in e} - {'ts'})
    out = io.StringIO()
    w = csv.writer(out, lineterminator='\n')
    w.writerow(fields)
    for e in events:
        row = []
        for k in fields:
            v = e.get(k)
            if v is None:
                row.append('')
            elif isinstance(v, bool):
                row.append('true' if v else 'false')
            else:
                row.append(v)
        w.writerow(row)
    write('sample.csv', out.getvalue())


def rfc3339(ms):
    t = datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc)
    return t.strftime('%Y-%m-%dT%H:%M:%S.') + '%03dZ' % (ms % 1000)


def sample_at(lines):
    out = []
    for l in lines:
        e = json.loads(l)
        ts = e.pop('ts')
        out.append(json.dumps(dict(at=rfc3339(ts), **e)))
    write('sample_at.jsonl', '\n'.join(out) + '\n')


def sample_marked(lines):
    out = []
    top = 0
    for i, l in enumerate(lines):
        e = json.loads(l)
        top = max(top, e['ts'])
        out.append(l)
        if i % 20 == 19:
            # everything up to a minute behind the largest time seen
            out.append(json.dumps({'$watermark': top - 60000}))
        if i == 30:
            out.append('')
        if i == 45:
            out.append('{"ts": "not a time", "type": "login"}')
        if i == 60:
            out.append('{"type": "order_created", "order_id": "o-9"')
        if i == 75:
            out.append('[1, 2, 3]')
    write('sample_marked.jsonl', '\n'.join(out) + '\n')


def crash_events(n):
    state = 0x5EED

    def nxt(below):
        nonlocal state
        state = (state + 0x9E3779B97F4A7C15) & M64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return (z ^ (z >> 31)) % below

    out = []
    for i in range(n):
        ts = i * 10 + nxt(3000)
        r = nxt(100)
        if r == 0 and i % 7 == 0:
            out.append('{"ts": "soon"}')
        elif r <= 39:
            out.append('{"ts":%d,"type":"created","order":"o%d"}' % (ts, nxt(4000)))
        elif r <= 69:
            o = nxt(4000)
            out.append('{"ts":%d,"type":"paid","order":"o%d","amount":%d}' % (ts, o, nxt(500)))
        else:
            u = nxt(200)
            out.append('{"ts":%d,"type":"fail","user":"u%d","amount":%d}' % (ts, u, nxt(50)))
    return out


def crash():
    lines = crash_events(1000)
    write('crash.jsonl', '\n'.join(lines) + '\n')
    with open(os.path.join(DATA, 'crash/changed.cep')) as f:
        changed = f.read()
    lines.insert(750, json.dumps({'$rules': changed}, separators=(',', ':')))
    lines.insert(500, '{"$rules_file": "rules.cep"}')
    lines.insert(250, '{"$rules_file": "changed.cep"}')
    write('crash_rules.jsonl', '\n'.join(lines) + '\n')


def rules_stream():
    # cli_rules.rs's stream: keys 0..4, times going up with disorder
    # within 5 ms (xorshift).
    state = 0x2A | 1

    def below(n):
        nonlocal state
        state ^= (state << 13) & M64
        state ^= state >> 7
        state ^= (state << 17) & M64
        return state % n

    types = ['a', 'b', 'c', 'x', 'y']
    events = []
    for i in range(400):
        ts = i * 3 + below(5)
        t, k, v, w = types[below(5)], below(4), below(5), below(2)
        events.append('{"ts":%d,"type":"%s","k":%d,"v":%d,"w":%d}' % (ts, t, k, v, w))
    with open(os.path.join(DATA, 'rules/new.cep')) as f:
        new = f.read()
    control = {
        100: json.dumps({'$rules': new}),
        180: json.dumps({'$rules': 'pattern broken { match a where a: }'}),
        250: '{"$rules_file": "old.cep"}',
        300: '{"$rules_file": "../crash/rules.cep"}',
        340: json.dumps({'$rules': new}),
    }
    out = []
    for i, e in enumerate(events):
        if i in control:
            out.append(control[i])
        out.append(e)
    write('rules.jsonl', '\n'.join(out) + '\n')


MAX = (1 << 63) - 1
MIN = -(1 << 63)


def edges():
    os.makedirs(os.path.join(DATA, 'edges'), exist_ok=True)
    pats = {
        'day': 'pattern p {\n within 1d\n timeouts\n match a followed by b\n where\n  a: k == "a"\n  b: k == "b"\n}\n',
        'largest': 'pattern p {\n within %dms\n timeouts\n match a followed by b\n where\n  a: k == "a"\n  b: k == "b"\n}\n' % MAX,
        'element': 'pattern p {\n timeouts\n match a followed by b within 1s\n where\n  a: k == "a"\n  b: k == "b"\n}\n',
        'smallest': 'pattern p {\n match a followed by b\n where\n  a: k == "a"\n  b: k == "b"\n}\n',
    }
    streams = {
        'max_order': '{"ts":%d,"type":"order_created","order_id":"o1"}\n' % MAX,
        'day': '{"ts":%d,"k":"a"}\n' % (MAX - 86400000 + 1),
        'largest': '{"ts":5,"k":"a"}\n',
        'element': '{"ts":%d,"k":"a"}\n{"ts":%d,"k":"b"}\n' % (MAX - 10, MAX),
        'smallest': '{"ts":%d,"k":"a"}\n{"ts":%d,"k":"b"}\n' % (MIN, MIN),
    }
    for name, text in pats.items():
        write('edges/%s.cep' % name, text)
    for name, text in streams.items():
        write('edges/%s.jsonl' % name, text)


def main():
    lines = sample()
    sample_csv(lines)
    sample_at(lines)
    sample_marked(lines)
    crash()
    rules_stream()
    edges()


if __name__ == '__main__':
    main()
