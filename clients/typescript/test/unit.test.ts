// What the cases do not say: the jitter, the default breaker warning,
// bad options and bad input, a random event id kept across retries, a
// refusal that is not the API's JSON, one trial while half open.
import { strict as assert } from "node:assert";
import { test } from "node:test";
import { ApiError, Client, ClientOptions, Transport, TransportError, TransportRequest, TransportResponse, Unavailable } from "../src/index";

const SCENES = JSON.stringify({
    rules_version: 1, retention_ms: 1000,
    scenes: [{ name: "payment", outcomes: ["approve", "review", "decline"], default: "approve", fallback: "review", late: "review", deadline_ms: 100, hit: "all", rules: [] }],
});
const decision = (id: string, eventId: string) => JSON.stringify({
    decision_id: id, scene: "payment", event_id: eventId, outcome: "approve", score: 0, rules: [], shadow: [],
    degraded: false, rules_version: 1, mode: "decide", stamp: 1, elapsed_us: 1,
});

/** Answers by a function; keeps the requests. */
class Fake implements Transport {
    requests: TransportRequest[] = [];
    constructor(private readonly answer: (req: TransportRequest, n: number) => Promise<TransportResponse> | TransportResponse) {}
    async request(req: TransportRequest): Promise<TransportResponse> {
        this.requests.push(req);
        return this.answer(req, this.requests.length);
    }
}

function make(transport: Transport, extra: Partial<ClientOptions> = {}) {
    const clock = { now: 0 };
    const sleeps: number[] = [];
    const client = new Client({
        url: "http://127.0.0.1:1", transport, clock: () => clock.now,
        sleep: async (ms) => { sleeps.push(ms); clock.now += ms; },
        onBreakerChange: () => {}, ...extra,
    });
    return { client, clock, sleeps };
}

const unavailable = { status: 503, headers: {}, body: JSON.stringify({ error: { code: "unavailable", message: "not ready" } }) };

test("jitter: each wait drawn from [wait/2, wait]", async () => {
    for (const [r, want] of [[0, [10, 20]], [0.5, [15, 30]], [0.999, [19.99, 39.98]]] as const) {
        const t = new Fake((req) => req.path === "/v1/scenes" ? { status: 200, headers: {}, body: SCENES } : unavailable);
        const { client, sleeps } = make(t, { jitter: true, random: () => r });
        const d = await client.decide("payment", { type: "payment" });
        assert.equal(d.decided_by, "client");
        assert.equal(sleeps.length, 2);
        sleeps.forEach((s, i) => assert.ok(Math.abs(s - want[i]!) < 1e-9, `${s} vs ${want[i]}`));
    }
});

test("an event id made when none is given, the same on every retry, named by the result", async () => {
    const t = new Fake((req) => req.path === "/v1/scenes" ? { status: 200, headers: {}, body: SCENES } : unavailable);
    const { client } = make(t, { jitter: false });
    const d = await client.decide("payment", { type: "payment" });
    const ids = t.requests.filter((r) => r.path === "/v1/decide").map((r) => JSON.parse(r.body!).event_id as string);
    assert.equal(ids.length, 3);
    assert.match(ids[0]!, /^[0-9a-f-]{36}$/);
    assert.deepEqual(new Set(ids).size, 1);
    assert.equal(d.event_id, ids[0]);
    const other = await client.dryRun("payment", { type: "payment" }).catch((e: unknown) => e);
    assert.ok(other instanceof Unavailable);
    const dryIds = t.requests.filter((r) => r.path === "/v1/decide").slice(3).map((r) => JSON.parse(r.body!).event_id as string);
    assert.equal(new Set(dryIds).size, 1);
    assert.notEqual(dryIds[0], ids[0], "each call its own id");
});

test("the request bodies are the document's: no field it does not have", async () => {
    const t = new Fake((req) => req.path === "/v1/scenes" ? { status: 200, headers: {}, body: SCENES }
        : req.path === "/v1/events" ? { status: 200, headers: {}, body: JSON.stringify({ recorded: 1, repeated: 0, rules_version: 1 }) }
            : { status: 200, headers: {}, body: decision("d-1", "e") });
    const { client } = make(t);
    await client.decide("payment", { type: "payment" }, { eventId: "e" });
    await client.dryRun("payment", { type: "payment" }, { eventId: "e", explain: true });
    await client.record([{ event_id: "l", event: { type: "login" } }]);
    const bodies = t.requests.filter((r) => r.body !== undefined).map((r) => Object.keys(JSON.parse(r.body!)).sort());
    assert.deepEqual(bodies, [
        ["deadline_ms", "event", "event_id", "scene"],
        ["deadline_ms", "event", "event_id", "explain", "mode", "scene"],
        ["events"],
    ]);
});

test("the breaker's changes, with no listener set, are written as warnings", async () => {
    const warned: unknown[][] = [];
    const warn = console.warn;
    console.warn = (...args: unknown[]) => { warned.push(args); };
    try {
        const t = new Fake(() => { throw new TransportError("unreachable", "no connection: ECONNREFUSED"); });
        const clock = { now: 0 };
        const client = new Client({ url: "http://127.0.0.1:1", transport: t, clock: () => clock.now, sleep: async (ms) => { clock.now += ms; }, breaker: { failureThreshold: 1, openMs: 10 }, fallbacks: { payment: "hold" } });
        const d = await client.decide("payment", { type: "payment" });
        assert.equal(d.degraded_why, "breaker_open", "the scenes' fetch opened it");
        assert.equal(client.breaker, "open");
    } finally {
        console.warn = warn;
    }
    assert.equal(warned.length, 1);
    assert.match(String(warned[0]![0]), /circuit breaker closed -> open at 0 ms after unreachable: no connection/);
});

test("half open: one trial at a time, the others refused as when open", async () => {
    let release: (r: TransportResponse) => void = () => {};
    let decides = 0;
    const t = new Fake((req) => {
        if (req.path === "/v1/scenes") return { status: 200, headers: {}, body: SCENES };
        decides += 1;
        if (decides === 1) throw new TransportError("unreachable", "down");
        return new Promise<TransportResponse>((resolve) => { release = resolve; });
    });
    const { client, clock } = make(t, { breaker: { failureThreshold: 1, openMs: 100 }, fallbacks: { payment: "hold" }, maxAttempts: 1 });
    assert.equal((await client.decide("payment", { type: "payment" })).degraded_why, "unreachable");
    assert.equal(client.breaker, "open");
    clock.now = 100;
    assert.equal(client.breaker, "half_open");
    const trial = client.decide("payment", { type: "payment" }, { eventId: "t" });
    await new Promise((r) => setImmediate(r));
    const other = await client.decide("payment", { type: "payment" });
    assert.equal(other.degraded_why, "breaker_open");
    assert.equal(other.attempts, 0);
    release({ status: 200, headers: {}, body: decision("d-1", "t") });
    const d = await trial;
    assert.equal(d.decided_by, "server");
    assert.equal(client.breaker, "closed");
    assert.equal(t.requests.filter((r) => r.path === "/v1/decide").length, 2, "the failure, then the one trial");
});

test("a refusal that is not the API's JSON is an ApiError all the same", async () => {
    const t = new Fake(() => ({ status: 403, headers: {}, body: "<html>forbidden</html>" }));
    const { client } = make(t);
    await assert.rejects(client.decision("d-1"), (e: unknown) => e instanceof ApiError && e.status === 403 && e.code === "unknown" && /forbidden/.test(e.message));
});

test("bad answers never crash: each is a server error, retried", async () => {
    const bad = ["", "null", "[]", "{}", "{\"decision_id\": 3}", "\u0000\uffff", "{".repeat(10000), JSON.stringify({ scenes: [{ name: 1 }] })];
    for (const body of bad) {
        const t = new Fake(() => ({ status: 200, headers: {}, body }));
        const { client } = make(t, { fallbacks: { payment: "hold" } });
        const d = await client.decide("payment", { type: "payment" });
        assert.equal(d.decided_by, "client");
        assert.equal(d.degraded_why, "server_error", body.slice(0, 40));
        await assert.rejects(client.record([{ event_id: "l", event: {} }]), (e: unknown) => e instanceof Unavailable && e.why === "server_error");
    }
    const weird = new Fake(() => ({ status: 503, headers: { "retry-after": "-1" }, body: "{\"error\": 5}" }));
    const { client, sleeps } = make(weird, { fallbacks: { payment: "hold" }, jitter: false });
    const d = await client.decide("payment", { type: "payment" });
    assert.equal(d.degraded_why, "unavailable");
    assert.deepEqual(sleeps, [20, 40], "a Retry-After not a whole number is not looked at");
});

test("bad options and bad input: TypeError or RangeError at once, no request", async () => {
    const t = new Fake(() => { throw new Error("no request expected"); });
    assert.throws(() => new Client({ url: "ftp://x" }), TypeError);
    assert.throws(() => new Client({ url: "not a url" }), TypeError);
    assert.throws(() => new Client({ url: "http://x", deadlineMs: 0 }), RangeError);
    assert.throws(() => new Client({ url: "http://x", maxAttempts: 0 }), RangeError);
    assert.throws(() => new Client({ url: "http://x", token: "a\nb" }), TypeError);
    assert.throws(() => new Client({ url: "https://x", ca: "/no/such/file.pem" }), TypeError);
    const { client } = make(t);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await assert.rejects(client.decide("payment", cyclic), TypeError);
    await assert.rejects(client.decide("payment", { n: 1n } as never), TypeError);
    await assert.rejects(client.decide("", {}), TypeError);
    await assert.rejects(client.decide("payment", [] as never), TypeError);
    await assert.rejects(client.decide("payment", {}, { deadlineMs: -1 }), RangeError);
    await assert.rejects(client.record("x" as never), TypeError);
    await assert.rejects(client.record([{ event: {} } as never]), TypeError);
    await assert.rejects(client.decision(""), TypeError);
    assert.equal(t.requests.length, 0);
});
