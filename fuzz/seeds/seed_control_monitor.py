#!/usr/bin/env python3
"""Writes the seeds of the `control` and `monitor` targets to
corpus/control/ and corpus/monitor/ (fuzz/README.md). Python 3, no
packages; run in fuzz/."""
import os

os.makedirs('corpus/control', exist_ok=True)
os.makedirs('corpus/monitor', exist_ok=True)


def ev(ts, t, k):
    return '{"ts":%d,"type":"%s","k":"%s"}' % (ts, t, k)


RULES_BA = ('pattern ba {\\n    partition by k\\n    match b followed by a\\n    where\\n'
            '        b: type == \\"b\\"\\n        a: type == \\"a\\"\\n}')
BASE = [ev(1000, 'a', 'x'), ev(1500, 'b', 'x'), ev(2000, 'a', 'y')]
# (options byte, lines): `R` a record of the rules stream, `@T ` a timestamp.
CONTROL = [
    (3, BASE + ['{"$rules": "%s"}' % RULES_BA, ev(2500, 'b', 'y'), ev(2600, 'a', 'y'),
                '{"$watermark": 5000}', ev(4000, 'a', 'z')]),
    (1, BASE + ['R{"$rules": "%s"}' % RULES_BA, ev(2500, 'b', 'y'), 'R@1 {"$rules": ""}',
                ev(9000, 'a', 'q')]),
    (2, BASE + ['{"$rules_file": "x.cep"}', '{"$rules": "pattern {"}',
                '{"$watermark": 9223372036854775807}', ev(3000, 'b', 'x')]),
    (7, ['@4102444800000 ' + ev(5, 'a', 'x'),
         'R@4102444800000 {"$rules": "%s"}' % RULES_BA, ev(10, 'b', 'x'),
         '{"$watermark": -9223372036854775808}']),
    (19, BASE + ['{"$watermark": "soon"}', '{"$rules": 5}', 'R{"$rules_file": "/etc/passwd"}',
                 'R not json', ev(3000, 'b', 'y')]),
]
for i, (options, lines) in enumerate(CONTROL):
    with open('corpus/control/seed-%d' % i, 'wb') as f:
        f.write(bytes([options]) + '\n'.join(lines).encode())

MONITOR = [
    b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /status.json HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"GET /graph/ab.json HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    b"HEAD /metrics HTTP/1.1\r\n\r\n",
    b"POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
    b"GET /../../etc/passwd HTTP/1.1\r\n\r\n",
    b"GET /graph/%2e%2e.json HTTP/1.1\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nGET /status.json HTTP/1.1\r\n\r\n",
]
for i, request in enumerate(MONITOR):
    with open('corpus/monitor/seed-%d' % i, 'wb') as f:
        f.write(request)
print('%d control seeds, %d monitor seeds' % (len(CONTROL), len(MONITOR)))
