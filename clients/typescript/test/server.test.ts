// The client against a real `cepheid serve` ($CEPHEID_BIN): the faults of
// issue 64 by counts, not by time (the server stopped, killed, overloaded;
// one decision per event id; one connection for calls in a row), and a
// bearer token over TLS.
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, test } from "node:test";
import { ApiError, BreakerChange, Client, ClientOptions, Unavailable } from "../src/index";
import { LosingProxy, Server, selfSigned } from "./server";

const TIMEOUT = { timeout: 120_000 };
const servers: Server[] = [];
after(async () => {
    for (const s of servers) await s.stop();
});

async function start(opts: Parameters<typeof Server.start>[0] = {}): Promise<Server> {
    const s = await Server.start(opts);
    servers.push(s);
    return s;
}

/**
 * A client whose breaker changes are kept, not written. Its deadline is a
 * hang guard (30 s), not a bound on the loaded machine's speed: the calls
 * that must time out give their own, short, while the server is stopped.
 */
function client(url: string, extra: Partial<ClientOptions> = {}): { client: Client; changes: BreakerChange[] } {
    const changes: BreakerChange[] = [];
    const c = new Client({ url, deadlineMs: 30_000, onBreakerChange: (ch) => changes.push(ch), ...extra });
    return { client: c, changes };
}

let n = 0;
function payment(): Record<string, unknown> {
    n += 1;
    return { type: "payment", card: `card-${n}`, device: `dev-${n}`, amount: 120 };
}

function counter(m: Map<string, number>, name: string): number {
    return m.get(name) ?? 0;
}

test("stopped for the whole call (SIGSTOP): the scene's fallback, decided by the client, a timeout", TIMEOUT, async () => {
    const server = await start();
    const { client: c } = client(server.url);
    try {
        const warm = await c.decide("payment", payment());
        assert.equal(warm.decided_by, "server");
        const published = (await c.scenes()).scenes.find((s) => s.name === "payment")!.fallback;
        await server.signal("SIGSTOP");
        let d;
        try {
            d = await c.decide("payment", payment(), { eventId: "slow-1", deadlineMs: 400 });
        } finally {
            await server.signal("SIGCONT");
        }
        assert.equal(d.decided_by, "client");
        assert.equal(d.degraded, true);
        assert.equal(d.degraded_why, "timeout");
        assert.equal(d.outcome, published);
        assert.equal(d.event_id, "slow-1");
        assert.equal(d.attempts, 1, "the first attempt's timeout is the whole time left: no retry");
        // The server, going on, still answers the client.
        const again = await c.decide("payment", payment());
        assert.equal(again.decided_by, "server");
    } finally {
        c.close();
    }
});

test("killed (gone): the fallback, unreachable, after max_attempts attempts; other calls raise Unavailable", TIMEOUT, async () => {
    const server = await start();
    const { client: c } = client(server.url, { fallbacks: { payment: "closed" } });
    try {
        assert.equal((await c.decide("payment", payment())).decided_by, "server");
        await server.kill();
        const d = await c.decide("payment", payment(), { eventId: "gone-1" });
        assert.equal(d.decided_by, "client");
        assert.equal(d.degraded_why, "unreachable");
        assert.equal(d.outcome, "decline", "closed: the harshest of the published outcomes");
        assert.equal(d.attempts, 3);
        await assert.rejects(c.record([{ event_id: "gone-2", event: { type: "login", account: "a1" } }]), (e: unknown) => {
            assert.ok(e instanceof Unavailable, String(e));
            assert.equal(e.why, "unreachable");
            return true;
        });
    } finally {
        c.close();
    }
});

test("a queue bound of 0 (--queue 0): every decision a 503 with Retry-After, the fallback after one attempt, nothing decided", TIMEOUT, async () => {
    const server = await start({ args: ["--queue", "0"] });
    const { client: c } = client(server.url, { fallbacks: { payment: "closed" }, deadlineMs: 500 });
    try {
        for (let i = 0; i < 3; i++) {
            const d = await c.decide("payment", payment(), { eventId: `q0-${i}` });
            assert.deepEqual(
                [d.decided_by, d.degraded_why, d.outcome, d.attempts],
                ["client", "unavailable", "decline", 1],
            );
        }
        const m = await server.metrics();
        assert.equal(counter(m, "cepheid_serve_unavailable_total"), 3);
        assert.equal(counter(m, "cepheid_serve_decisions_total"), 0);
    } finally {
        c.close();
    }
});

test("overloaded (a queue of 1, calls at once): each 429 with Retry-After is the fallback, decided by the client; the counts are the server's", TIMEOUT, async () => {
    // The 429s come from calls at once against a queue of one, as
    // tests/cli_serve.rs makes them (`--queue 0` is a 503 for all, above).
    const server = await start({ args: ["--queue", "1"] });
    const { client: c, changes } = client(server.url, {
        fallbacks: { payment: "closed" },
        maxAttempts: 1,
        breaker: { failureThreshold: 1_000_000, openMs: 5000 },
    });
    try {
        await c.scenes();
        const before = await server.metrics();
        let overloaded = 0;
        let decided = 0;
        for (let round = 0; round < 20 && overloaded === 0; round++) {
            const results = await Promise.all(Array.from({ length: 48 }, (_, i) => c.decide("payment", payment(), { eventId: `busy-${round}-${i}` })));
            for (const d of results) {
                if (d.decided_by === "client") {
                    assert.equal(d.degraded_why, "overloaded", JSON.stringify(d));
                    assert.equal(d.outcome, "decline", "closed: the harshest published outcome");
                    assert.equal(d.attempts, 1);
                    assert.match(d.error, /429 overloaded/);
                    overloaded += 1;
                } else {
                    decided += 1;
                }
            }
        }
        assert.ok(overloaded > 0, "48 calls at once against a queue of 1, 20 times: never a 429");
        const m = await server.metrics();
        const refused = counter(m, "cepheid_serve_refused_queue_total") - counter(before, "cepheid_serve_refused_queue_total");
        const answered = counter(m, "cepheid_serve_decisions_total") - counter(before, "cepheid_serve_decisions_total");
        assert.equal(refused, overloaded, "each 429 the server counted is a fallback the client gave");
        assert.equal(answered, decided, "each decision the server counted is one the client got");
        assert.deepEqual(changes, [], "the breaker did not move");
    } finally {
        c.close();
    }
});

test("stopped longer than the deadline, then the same event id asked again: one decision for it, found again by its id", TIMEOUT, async () => {
    const server = await start();
    const { client: c } = client(server.url);
    try {
        assert.equal((await c.decide("payment", payment())).decided_by, "server");
        const event = payment();
        const before = await server.metrics();
        await server.signal("SIGSTOP");
        let first;
        try {
            first = await c.decide("payment", event, { eventId: "once-1", deadlineMs: 300 });
        } finally {
            await server.signal("SIGCONT");
        }
        assert.equal(first.decided_by, "client");
        assert.equal(first.degraded_why, "timeout");
        // The request the client gave up on was in the server's socket
        // when the client closed it: the server, going on, drops it (its
        // client went away; seen with this server) or decides it; either
        // way the same event id asked again makes no second decision.
        const second = await c.decide("payment", event, { eventId: "once-1" });
        const third = await c.decide("payment", event, { eventId: "once-1" });
        assert.equal(second.decided_by, "server");
        assert.equal(third.decided_by, "server");
        assert.equal(third.repeated, true);
        assert.equal(third.decision_id, second.decision_id);
        const m = await server.metrics();
        const decided = counter(m, "cepheid_serve_decisions_total") - counter(before, "cepheid_serve_decisions_total");
        const repeated = counter(m, "cepheid_serve_repeated_total") - counter(before, "cepheid_serve_repeated_total");
        assert.equal(decided - repeated, 1, `one decision for once-1 (decisions ${decided}, repeated ${repeated})`);
        assert.ok(repeated >= 1);
        const looked = await c.decision(second.decision_id as string);
        assert.equal(looked.event_id, "once-1");
        assert.equal(looked.decision_id, second.decision_id);
        // The server's decision log has it once (up to a decision made after).
        await c.decide("payment", payment(), { eventId: "once-after" });
        const log = await server.decisionsUpTo("once-after");
        const lines = log.split("\n").filter((l) => l.includes('"once-1"'));
        assert.equal(lines.length, 1, `decisions.jsonl names once-1 ${lines.length} times:\n${lines.join("\n")}`);
    } finally {
        c.close();
    }
});

test("a decision taken whose answer was lost: the retry, with the same event id, gets it back (repeated), never a second decision", TIMEOUT, async () => {
    const server = await start();
    const proxy = await LosingProxy.start(server.url);
    const { client: c } = client(proxy.url);
    try {
        await c.scenes();
        const before = await server.metrics();
        proxy.loseNextAnswer = true;
        const d = await c.decide("payment", payment(), { eventId: "lost-1" });
        assert.equal(proxy.lost, 1, "the first answer was lost");
        assert.equal(d.decided_by, "server");
        assert.equal(d.attempts, 2, "one retry");
        assert.equal(d.repeated, true, "the retry got the first decision back");
        assert.equal(d.event_id, "lost-1");
        const m = await server.metrics();
        const answered = counter(m, "cepheid_serve_decisions_total") - counter(before, "cepheid_serve_decisions_total");
        const repeated = counter(m, "cepheid_serve_repeated_total") - counter(before, "cepheid_serve_repeated_total");
        assert.deepEqual([answered, repeated], [2, 1], "two answers, the second the first again: one decision");
        const looked = await c.decision(d.decision_id as string);
        assert.equal(looked.event_id, "lost-1");
        await c.decide("payment", payment(), { eventId: "lost-after" });
        const log = await server.decisionsUpTo("lost-after");
        assert.equal(log.split("\n").filter((l) => l.includes('"lost-1"')).length, 1, "decisions.jsonl has lost-1 once");
    } finally {
        c.close();
        proxy.close();
    }
});

test("calls in a row make one connection", TIMEOUT, async () => {
    const server = await start();
    const { client: c } = client(server.url);
    try {
        const before = counter(await server.metrics(), "cepheid_serve_http_connections_total");
        const calls = 25;
        let last;
        for (let i = 0; i < calls; i++) {
            if (i % 5 === 4) await c.record([{ event_id: `conn-l${i}`, event: { type: "login", account: `a${i}` } }]);
            else last = await c.decide("payment", payment(), { eventId: `conn-${i}` });
        }
        assert.equal(last?.decided_by, "server");
        await c.decision(last!.decision_id as string);
        await c.scenes();
        const now = counter(await server.metrics(), "cepheid_serve_http_connections_total");
        // The client's one connection, and this fetch of /metrics's own.
        assert.equal(now - before, 2, `${now - before - 1} connections for ${calls + 2} calls`);
    } finally {
        c.close();
    }
});

test("a bearer token over TLS (a self-signed certificate trusted through `ca`): decision, dry run, events, lookup, scenes", TIMEOUT, async () => {
    const tls = selfSigned();
    const tokens = path.join(tls.dir, "tokens");
    fs.writeFileSync(tokens, "t0k-ts-1\n");
    const server = await start({
        args: ["--auth-tokens", tokens, "--tls-cert", tls.cert, "--tls-key", tls.key],
        ca: fs.readFileSync(tls.cert),
        token: "t0k-ts-1",
    });
    const url = server.url.replace(/^http:/, "https:");
    const { client: c } = client(url, { token: "t0k-ts-1", ca: tls.cert });
    try {
        assert.match(url, /^https:\/\/127\.0\.0\.1:\d+$/);
        const scenes = await c.scenes();
        assert.deepEqual(scenes.scenes.map((s) => s.name).sort(), ["coupon", "payment", "sign_up"]);
        const event = payment();
        const d = await c.decide("payment", event, { eventId: "tls-1", explain: true });
        assert.equal(d.decided_by, "server");
        assert.equal(d.attempts, 1);
        assert.ok(Array.isArray((d as { explanation?: unknown[] }).explanation), "explain asked: an explanation");
        const again = await c.decide("payment", event, { eventId: "tls-1" });
        assert.equal(again.decided_by, "server");
        assert.equal(again.repeated, true);
        assert.equal(again.decision_id, d.decision_id);
        await assert.rejects(c.decide("payment", { ...event, amount: 125 }, { eventId: "tls-1" }),
            (e: unknown) => e instanceof ApiError && e.status === 409 && e.code === "event_id_reused" && e.field === "event.amount");
        const looked = await c.decision(d.decision_id as string);
        assert.equal(looked.decision_id, d.decision_id);
        assert.equal(looked.outcome, d.outcome);
        const dry = await c.dryRun("payment", payment());
        assert.equal(dry.mode, "dry_run");
        assert.equal(dry.decided_by, "server");
        const rec = await c.record([
            { event_id: "tls-l1", event: { type: "login", account: "a1", device: "d1" } },
            { event_id: "tls-l2", event: { type: "login", account: "a2", device: "d1" } },
        ]);
        assert.deepEqual([rec.recorded, rec.repeated], [2, 0]);
        const rec2 = await c.record([{ event_id: "tls-l1", event: { type: "login", account: "a1", device: "d1" } }]);
        assert.deepEqual([rec2.recorded, rec2.repeated], [0, 1]);
        await assert.rejects(c.decision("d-999999"), (e: unknown) => e instanceof ApiError && e.status === 404);
        await assert.rejects(c.decide("paymnet", payment()), (e: unknown) => e instanceof ApiError && e.status === 404 && e.code === "unknown_scene" && e.field === "scene");
        // Without the token: the server's 401, raised (the scenes' fetch is refused).
        const { client: anonymous } = client(url, { ca: tls.cert });
        await assert.rejects(anonymous.decide("payment", payment()), (e: unknown) => e instanceof ApiError && e.status === 401 && e.code === "unauthorized");
        anonymous.close();
        // Without `ca`: the certificate is not trusted, no connection.
        const { client: untrusting } = client(url, { token: "t0k-ts-1", maxAttempts: 1 });
        await assert.rejects(untrusting.scenes(), (e: unknown) => e instanceof Unavailable && e.why === "unreachable" && /certificate/i.test(e.message));
        untrusting.close();
    } finally {
        c.close();
        fs.rmSync(tls.dir, { recursive: true, force: true });
    }
});


test("a list change blocks a device from the next decision, and is refused where the rules say no list", TIMEOUT, async () => {
    const server = await start();
    const { client: c } = client(server.url);
    const pay = (card: string) => ({ type: "payment", card, device: "dev-listed", amount: 5 });
    assert.equal((await c.decide("payment", pay("c-ts1"))).outcome, "approve");
    const changed = await c.changeList("blocked_devices", { add: ["dev-listed"] });
    assert.deepEqual([changed.list, changed.added, changed.removed], ["blocked_devices", 1, 0]);
    assert.ok((changed.expires ?? 0) > 0 && changed.entry > 0);
    const blocked = await c.decide("payment", pay("c-ts2"));
    assert.equal(blocked.outcome, "decline");
    assert.equal((blocked as { list?: string }).list, "device in blocked_devices");
    const gone = await c.changeList("blocked_devices", { remove: ["dev-listed"] });
    assert.equal(gone.expires, undefined);
    assert.equal((await c.decide("payment", pay("c-ts3"))).outcome, "approve");
    const at = await c.changeList("blocked_devices", { add: ["dev-x", 7], expires: "2026-12-01T00:00:00Z" });
    assert.equal(at.expires, 1796083200000);
    await assert.rejects(c.changeList("blocked_devics", { add: ["dev-x"] }), (e: unknown) => {
        assert.ok(e instanceof ApiError);
        assert.equal(e.status, 404);
        assert.equal(e.code, "not_found");
        return true;
    });
    await assert.rejects(c.changeList("blocked_devices", {}), TypeError);
    await assert.rejects(c.changeList("blocked_devices", { remove: ["x"], expires: 5 }), TypeError);
    assert.equal(c.breaker, "closed");
});
