// Every case of clients/cases.json, unchanged, through a scripted
// transport on an injected clock and sleep, with the runner rules of
// docs/clients.md ("The cases").
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { ApiError, Client, ClientOptions, Transport, TransportError, TransportRequest, TransportResponse, Unavailable } from "../src/index";

const CASES = path.resolve(__dirname, "../../../cases.json");

interface Exchange {
    expect: { method: string; path: string; headers?: Record<string, string>; body?: Record<string, unknown> };
    reply: { status?: number; body?: unknown; raw?: string; headers?: Record<string, string>; fault?: "refused" | "reset" | "timeout" };
    takes_ms?: number;
}

interface Step {
    at_ms?: number;
    call: Record<string, unknown> & { op: string };
    exchanges?: Exchange[];
    result?: Record<string, unknown>;
    error?: { type: "api" | "unavailable"; status?: number; code?: string; why?: string; attempts?: number };
    sleeps_ms?: number[];
    breaker?: string;
    transitions?: [string, string][];
    now_ms?: number;
}

interface Case {
    name: string;
    config: Record<string, unknown>;
    steps: Step[];
}

const file = JSON.parse(fs.readFileSync(CASES, "utf8")) as { defaults: Record<string, unknown>; cases: Case[] };

/** The transport of one step: its exchanges in order, on the case's clock. */
class Scripted implements Transport {
    exchanges: Exchange[] = [];
    used = 0;
    problems: string[] = [];

    constructor(private readonly clock: { now: number }) {}

    async request(req: TransportRequest): Promise<TransportResponse> {
        const n = this.used;
        const exchange = this.exchanges[n];
        if (exchange === undefined) {
            this.problems.push(`request ${n + 1} not expected: ${req.method} ${req.path} ${req.body ?? ""}`);
            throw new TransportError("unreachable", "the case expects no more requests");
        }
        this.used += 1;
        const want = exchange.expect;
        const label = `request ${n + 1} (${want.method} ${want.path})`;
        if (req.method !== want.method || req.path !== want.path) {
            this.problems.push(`${label}: got ${req.method} ${req.path}`);
        }
        for (const [name, value] of Object.entries(want.headers ?? {})) {
            const got = Object.entries(req.headers).find(([k]) => k.toLowerCase() === name.toLowerCase());
            if (got === undefined || got[1] !== value) this.problems.push(`${label}: header ${name} is ${JSON.stringify(got?.[1])}, not ${JSON.stringify(value)}`);
        }
        if (want.body !== undefined) {
            let body: Record<string, unknown> | undefined;
            try {
                body = JSON.parse(req.body ?? "") as Record<string, unknown>;
            } catch {
                this.problems.push(`${label}: the body is not JSON: ${req.body}`);
            }
            for (const [field, value] of Object.entries(want.body)) {
                try {
                    assert.deepEqual(body?.[field], value);
                } catch {
                    this.problems.push(`${label}: body.${field} is ${JSON.stringify(body?.[field])}, not ${JSON.stringify(value)}`);
                }
            }
        }
        const reply = exchange.reply;
        const takes = exchange.takes_ms ?? 0;
        if (reply.fault === "timeout" || (reply.fault === undefined && takes >= req.timeoutMs)) {
            this.clock.now += req.timeoutMs;
            throw new TransportError("timeout", `no answer within ${req.timeoutMs} ms`);
        }
        this.clock.now += takes;
        if (reply.fault === "refused") throw new TransportError("unreachable", "no connection: connect ECONNREFUSED (scripted)");
        if (reply.fault === "reset") throw new TransportError("unreachable", "the connection was lost before the answer (scripted)");
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(reply.headers ?? {})) headers[k.toLowerCase()] = v;
        const body = reply.raw !== undefined ? reply.raw : JSON.stringify(reply.body);
        return { status: reply.status ?? 200, headers, body };
    }
}

/** The cases' snake_case options as the client's camelCase ones. */
function options(config: Record<string, unknown>): Omit<ClientOptions, "clock" | "sleep" | "transport" | "onBreakerChange"> {
    const c = config as {
        url: string; token?: string; deadline_ms?: number; max_attempts?: number; backoff_ms?: number; backoff_max_ms?: number;
        jitter?: boolean; retry_budget?: { max_tokens: number; token_ratio: number }; breaker?: { failure_threshold: number; open_ms: number };
        scenes_ttl_ms?: number; fallbacks?: Record<string, string>;
    };
    const known = new Set(["url", "token", "deadline_ms", "max_attempts", "backoff_ms", "backoff_max_ms", "jitter", "retry_budget", "breaker", "scenes_ttl_ms", "fallbacks"]);
    for (const key of Object.keys(config)) assert.ok(known.has(key), `an option the runner does not know: ${key}`);
    const out: ReturnType<typeof options> = { url: c.url };
    if (c.token !== undefined) out.token = c.token;
    if (c.deadline_ms !== undefined) out.deadlineMs = c.deadline_ms;
    if (c.max_attempts !== undefined) out.maxAttempts = c.max_attempts;
    if (c.backoff_ms !== undefined) out.backoffMs = c.backoff_ms;
    if (c.backoff_max_ms !== undefined) out.backoffMaxMs = c.backoff_max_ms;
    if (c.jitter !== undefined) out.jitter = c.jitter;
    if (c.retry_budget !== undefined) out.retryBudget = { maxTokens: c.retry_budget.max_tokens, tokenRatio: c.retry_budget.token_ratio };
    if (c.breaker !== undefined) out.breaker = { failureThreshold: c.breaker.failure_threshold, openMs: c.breaker.open_ms };
    if (c.scenes_ttl_ms !== undefined) out.scenesTtlMs = c.scenes_ttl_ms;
    if (c.fallbacks !== undefined) out.fallbacks = c.fallbacks;
    return out;
}

async function call(client: Client, c: Step["call"]): Promise<unknown> {
    const known: Record<string, string[]> = {
        decide: ["op", "scene", "event", "event_id", "deadline_ms", "explain"],
        dry_run: ["op", "scene", "event", "event_id", "deadline_ms", "explain"],
        record: ["op", "events", "deadline_ms"],
        decision: ["op", "decision_id", "deadline_ms"],
        scenes: ["op", "deadline_ms"],
    };
    assert.ok(known[c.op], `an op the runner does not know: ${c.op}`);
    for (const key of Object.keys(c)) assert.ok(known[c.op]!.includes(key), `a field of ${c.op} the runner does not know: ${key}`);
    const deadline = c.deadline_ms === undefined ? {} : { deadlineMs: c.deadline_ms as number };
    const decide = { ...deadline, ...(c.event_id === undefined ? {} : { eventId: c.event_id as string }), ...(c.explain === undefined ? {} : { explain: c.explain as boolean }) };
    switch (c.op) {
        case "decide": return client.decide(c.scene as string, c.event as Record<string, unknown>, decide);
        case "dry_run": return client.dryRun(c.scene as string, c.event as Record<string, unknown>, decide);
        case "record": return client.record(c.events as { event_id: string; event: Record<string, unknown> }[], deadline);
        case "decision": return client.decision(c.decision_id as string, deadline);
        default: return client.scenes(deadline);
    }
}

test("clients/cases.json has cases", () => {
    assert.ok(file.cases.length >= 28, `only ${file.cases.length} cases`);
});

for (const kase of file.cases) {
    test(kase.name, async () => {
        const clock = { now: 0 };
        const transport = new Scripted(clock);
        let sleeps: number[] = [];
        let transitions: [string, string][] = [];
        const client = new Client({
            ...options({ ...file.defaults, ...kase.config }),
            clock: () => clock.now,
            sleep: async (ms) => {
                sleeps.push(ms);
                clock.now += ms;
            },
            transport,
            onBreakerChange: (change) => {
                transitions.push([change.from, change.to]);
                assert.equal(change.atMs, clock.now, "a change is told at the clock's time");
            },
        });
        for (const [i, step] of kase.steps.entries()) {
            const where = `step ${i + 1} (${step.call.op})`;
            if (step.at_ms !== undefined) {
                assert.ok(step.at_ms >= clock.now, `${where}: at_ms ${step.at_ms} is before the clock (${clock.now})`);
                clock.now = step.at_ms;
            }
            transport.exchanges = step.exchanges ?? [];
            transport.used = 0;
            transport.problems = [];
            sleeps = [];
            transitions = [];
            let result: unknown;
            let error: unknown;
            try {
                result = await call(client, step.call);
            } catch (e) {
                error = e;
            }
            assert.deepEqual(transport.problems, [], `${where}: requests not as the case expects`);
            assert.equal(transport.used, transport.exchanges.length, `${where}: ${transport.used} requests made, the case expects ${transport.exchanges.length}`);
            if (step.error !== undefined) {
                assert.ok(error !== undefined, `${where}: expected an error ${JSON.stringify(step.error)}, got ${JSON.stringify(result)}`);
                if (step.error.type === "api") {
                    assert.ok(error instanceof ApiError, `${where}: expected an ApiError, got ${String(error)}`);
                    assert.equal(error.status, step.error.status, `${where}: status`);
                    assert.equal(error.code, step.error.code, `${where}: code`);
                    assert.ok(error.message.length > 0, `${where}: a message`);
                } else {
                    assert.ok(error instanceof Unavailable, `${where}: expected Unavailable, got ${String(error)}`);
                    assert.equal(error.why, step.error.why, `${where}: why`);
                    assert.equal(error.attempts, step.error.attempts, `${where}: attempts`);
                    assert.ok(error.message.length > 0, `${where}: a message`);
                }
            } else {
                if (error !== undefined) throw new Error(`${where}: ${String(error)}`, { cause: error });
                assert.ok(step.result !== undefined, `${where}: the case gives neither result nor error`);
                const got = result as Record<string, unknown>;
                for (const [field, value] of Object.entries(step.result)) {
                    assert.deepEqual(got[field], value, `${where}: result.${field} in ${JSON.stringify(got)}`);
                }
                if (got.decided_by === "client") {
                    assert.equal(typeof got.error, "string", `${where}: a client's decision says its error`);
                }
            }
            if (step.sleeps_ms !== undefined) assert.deepEqual(sleeps, step.sleeps_ms, `${where}: sleeps`);
            if (step.transitions !== undefined) assert.deepEqual(transitions, step.transitions, `${where}: transitions`);
            if (step.breaker !== undefined) assert.equal(client.breaker, step.breaker, `${where}: breaker`);
            if (step.now_ms !== undefined) assert.equal(clock.now, step.now_ms, `${where}: now_ms`);
        }
    });
}
