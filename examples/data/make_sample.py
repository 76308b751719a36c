"""Writes sample.jsonl: a small, readable stream (2024-05-01, 09:00-10:45 UTC)
in which every rule in patterns/ finds something, with a few events arriving
a few seconds out of order. Run: python3 examples/data/make_sample.py > examples/data/sample.jsonl
"""
import json
T0 = 1714554000000  # 2024-05-01T09:00:00Z
def t(h, m, s=0): return T0 + ((h-9)*3600 + m*60 + s)*1000
ev = []
def e(ts, **f): ev.append((ts, dict(ts=ts, **f)))

# orders
e(t(9,0,5), type="order_created", order_id="o-1001", user_id="u-1", amount=42.50)
e(t(9,3,10), type="order_paid", order_id="o-1001", user_id="u-1", amount=42.50)
e(t(9,1,0), type="order_created", order_id="o-1002", user_id="u-2", amount=19.99)
e(t(9,5,0), type="order_created", order_id="o-1003", user_id="u-3", amount=120.00)
e(t(9,24,0), type="order_paid", order_id="o-1003", user_id="u-3", amount=120.00)
e(t(9,10,0), type="order_created", order_id="o-1004", user_id="u-4", amount=310.00)
e(t(9,10,30), type="payment", order_id="o-1004", status="declined", reason="insufficient_funds")
e(t(9,11,10), type="payment", order_id="o-1004", status="declined", reason="insufficient_funds")
e(t(9,12,0), type="payment", order_id="o-1004", status="declined", reason="card_expired")
e(t(9,14,0), type="order_cancelled", order_id="o-1004", user_id="u-4")
e(t(9,20,0), type="order_created", order_id="o-1005", user_id="u-5", amount=64.00)
e(t(9,20,40), type="payment", order_id="o-1005", status="declined", reason="do_not_honor")
e(t(9,21,30), type="payment", order_id="o-1005", status="declined", reason="do_not_honor")
e(t(9,23,0), type="payment", order_id="o-1005", status="approved")
e(t(9,23,1), type="order_paid", order_id="o-1005", user_id="u-5", amount=64.00)
e(t(10,5,0), type="order_created", order_id="o-1006", user_id="u-6", amount=15.00)
e(t(10,9,0), type="order_paid", order_id="o-1006", user_id="u-6", amount=15.00)
e(t(10,20,0), type="order_created", order_id="o-1007", user_id="u-1", amount=88.00)
e(t(10,40,0), type="order_created", order_id="o-1008", user_id="u-2", amount=23.00)

# logins: brute force without success, brute force with success, normal
for i, s in enumerate([0, 6, 13, 19, 26, 33]):
    e(t(9,30,s), type="login", user_id="u-7", success=False, ip="203.0.113.9" if i < 4 else "203.0.113.44")
for i, s in enumerate([0, 20, 45, 70, 95]):
    e(t(9,35,0) + s*1000, type="login", user_id="u-8", success=False, ip="192.0.2.77")
e(t(9,37,10), type="login", user_id="u-8", success=True, ip="192.0.2.77")
e(t(9,2,0), type="login", user_id="u-9", success=False, ip="10.1.2.3")
e(t(9,2,9), type="login", user_id="u-9", success=False, ip="10.1.2.3")
e(t(9,2,20), type="login", user_id="u-9", success=True, ip="10.1.2.3")
for u, m in [("u-1", 0), ("u-2", 4), ("u-3", 8), ("u-5", 19), ("u-6", 62)]:
    e(t(9,0,0) + m*60000 + 1000, type="login", user_id=u, success=True, ip="10.0.0.%s" % u[2:])

# account takeover
e(t(9,40,0), type="login", user_id="u-21", account_id="a-501", success=True, ip="198.51.100.23")
e(t(9,47,0), type="password_change", user_id="u-21", account_id="a-501", ip="198.51.100.23")
e(t(9,55,30), type="withdrawal", user_id="u-21", account_id="a-501", amount=2500.00, currency="EUR")
e(t(9,41,0), type="login", user_id="u-22", account_id="a-502", success=True, ip="198.51.100.87")
e(t(9,44,0), type="password_change", user_id="u-22", account_id="a-502", ip="10.0.0.22")
e(t(9,50,0), type="withdrawal", user_id="u-22", account_id="a-502", amount=1800.00, currency="EUR")
e(t(9,42,0), type="login", user_id="u-23", account_id="a-503", success=True, ip="198.51.100.90")
e(t(9,43,0), type="password_change", user_id="u-23", account_id="a-503", ip="198.51.100.90")
e(t(9,58,0), type="withdrawal", user_id="u-23", account_id="a-503", amount=200.00, currency="EUR")

# trades
for i, m in enumerate([3, 17, 31, 48, 66]):
    sym, qty, px = [("ACME", 100, 101.5), ("GLOBX", 40, 55.2), ("ACME", 50, 99.1), ("INITECH", 10, 310.0), ("GLOBX", 25, 56.0)][i]
    e(t(9,0,0) + m*60000, type="trade", user_id="u-11", symbol=sym, quantity=qty, price=px, notional=round(qty*px, 2), status="filled")
for i, m in enumerate([6, 22, 40, 58, 75]):
    e(t(9,0,0) + m*60000 + 30000, type="trade", user_id="u-12", symbol="UMBR", quantity=20, price=12.5, notional=250.0,
      status="rejected" if i == 2 else "filled")

# card testing
for m, amt, mer in [(0, 1.00, "m-17"), (2, 2.50, "m-22"), (5, 0.99, "m-17")]:
    e(t(9,50,0) + m*60000, type="charge", card_id="c-4242", amount=amt, merchant_id=mer)
e(t(10,8,0), type="charge", card_id="c-4242", amount=899.00, merchant_id="m-3")
e(t(9,15,0), type="charge", card_id="c-1111", amount=45.00, merchant_id="m-8")
e(t(9,45,0), type="charge", card_id="c-1111", amount=12.30, merchant_id="m-9")
e(t(10,2,0), type="charge", card_id="c-1111", amount=650.00, merchant_id="m-3")

# prices
for i, p in enumerate([101.5, 100.2, 99.1, 98.7, 99.5, 100.8, 101.0]):
    e(t(10,0,0) + i*60000, type="price", symbol="ACME", price=p)
for i, p in enumerate([55.0, 55.4, 55.1, 55.6, 55.9, 56.0]):
    e(t(10,0,30) + i*60000, type="price", symbol="GLOBX", price=p)

# sensors
for i, c in enumerate([71.0, 74.2, 78.9, 83.5]):
    e(t(10,15,0) + i*10000, type="sensor", sensor_id="s-3", temperature=c)
for i, c in enumerate([70.1, 72.0, 71.4, 73.0, 72.2]):
    e(t(10,15,5) + i*10000, type="sensor", sensor_id="s-4", temperature=c)
for i, c in enumerate([64.0, 64.2, 64.1]):
    e(t(10,44,0) + i*20000, type="sensor", sensor_id="s-4", temperature=c)
# a quiet sensor keeps reporting into the afternoon: event time moves on, so
# the two-hour windows of the unfinished account takeovers close (timeouts)
for i, c in enumerate([61.0, 60.8, 61.2, 60.9, 61.1]):
    e(t(11,0,0) + i*30*60000, type="sensor", sensor_id="s-1", temperature=c)

# coupons
for i, m in enumerate([0, 6, 13, 21, 30, 38]):
    e(t(9,25,0) + m*60000, type="coupon_claim", device_id="d-9", user_id="u-%d" % (30+i), coupon_id="WELCOME10")
e(t(9,33,0), type="coupon_claim", device_id="d-2", user_id="u-5", coupon_id="SPRING5")

ev.sort(key=lambda x: x[0])
lines = [json.dumps(d, separators=(", ", ": ")) for _, d in ev]
# a few events arrive out of order, a few seconds behind the stream: late
# with the default --max-delay 0ms, accepted with --max-delay 10s
for ts_move, ts_after in [(t(9,0,1), t(9,0,5)), (t(10,15,15), t(10,15,20)), (t(10,15,25), t(10,15,30))]:
    i = next(k for k, (ts, _) in enumerate(ev) if ts == ts_move)
    item = ev.pop(i)
    j = next(k for k, (ts, _) in enumerate(ev) if ts == ts_after)
    ev.insert(j + 1, item)
print("\n".join(json.dumps(d, separators=(", ", ": ")) for _, d in ev))
