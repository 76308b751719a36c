/**
 * The client of `cepheid serve`, exactly as docs/clients.md says: a
 * deadline per call, the scene's fallback decided by the client when the
 * server does not answer in time, retries with the same event id within a
 * budget, a circuit breaker, connection reuse.
 */
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { components } from "./api.gen";
import { ApiError, FailureKind, Unavailable } from "./errors";
import { HttpTransport, Transport, TransportError, TransportRequest, TransportResponse } from "./transport";

/** The API's documents (generated from docs/api/openapi.yaml). */
export type Decision = components["schemas"]["Decision"];
export type Scenes = components["schemas"]["Scenes"];
export type Scene = components["schemas"]["Scene"];
export type EventsRecorded = components["schemas"]["EventsRecorded"];
export type Event = components["schemas"]["Event"];
/** One event to record: its id (the idempotency key) and its fields. */
export type EventToRecord = components["schemas"]["EventsRequest"]["events"][number];
/** A list's value, as an event's field holds it. */
export type ListValue = components["schemas"]["ListValue"];
/**
 * The document's `ListChange` (whose `anyOf` the generated type leaves
 * open): `add`, `remove`, or both; `expires` with `add`.
 */
export type ListChange = { add?: ListValue[]; remove?: ListValue[]; expires?: number | string };
export type ListChanged = components["schemas"]["ListChanged"];

/** A decision the server answered (degraded or not): its body as it is, and what the client adds. */
export type ServerDecision = Decision & { decided_by: "server"; attempts: number };

/** A decision the client made: the scene's fallback, for the server gave none. */
export interface ClientDecision {
    decided_by: "client";
    scene: string;
    event_id: string;
    outcome: string;
    degraded: true;
    /** The last failed attempt's kind, or `breaker_open` when no request was sent. */
    degraded_why: FailureKind | "breaker_open";
    attempts: number;
    /** The last failure's message. */
    error: string;
}

/** What {@link Client.decide} gives. */
export type DecideResult = ServerDecision | ClientDecision;

/** The caller's fallback for a scene: its mildest outcome, its harshest, or an outcome's name. */
export type Fallback = "open" | "closed" | (string & {});

export type BreakerState = "closed" | "open" | "half_open";

/** A change of the breaker's state, given to {@link ClientOptions.onBreakerChange}. */
export interface BreakerChange {
    from: BreakerState;
    to: BreakerState;
    /** The client's clock (milliseconds) when it changed. */
    atMs: number;
    /** The failed attempt that caused it, if one did. */
    failure?: { kind: FailureKind; message: string };
}

export interface ClientOptions {
    /** `http://` or `https://` and the server's address. */
    url: string;
    /** Sent as `Authorization: Bearer TOKEN` on every request. */
    token?: string;
    /** A PEM file (its path, or its contents) of certificates to trust for `https://`; else the system's roots. */
    ca?: string | Buffer;
    /** A call's deadline when the call gives none (default 1000). */
    deadlineMs?: number;
    /** By scene: `"open"`, `"closed"` or an outcome's name (default: the scene's published fallback). */
    fallbacks?: Record<string, Fallback>;
    /** Attempts of one call, the first included (default 3). */
    maxAttempts?: number;
    /** The wait before retry n (from 1) is `min(backoffMaxMs, backoffMs * 2^(n-1))` (defaults 20, 500). */
    backoffMs?: number;
    backoffMaxMs?: number;
    /** Each wait drawn uniformly from [wait/2, wait] (default true). */
    jitter?: boolean;
    /** The retry budget, a token bucket as gRPC's (default `{maxTokens: 10, tokenRatio: 0.1}`). */
    retryBudget?: { maxTokens?: number; tokenRatio?: number };
    /** The circuit breaker (default `{failureThreshold: 5, openMs: 5000}`). */
    breaker?: { failureThreshold?: number; openMs?: number };
    /** How long the copy of `GET /v1/scenes` serves (default 60000). */
    scenesTtlMs?: number;
    /** Told each change of the breaker's state; without it, `console.warn` says it. */
    onBreakerChange?: (change: BreakerChange) => void;
    /** A monotonic clock in milliseconds (default `performance.now`). For tests. */
    clock?: () => number;
    /** Waits that many milliseconds (default a timer). For tests. */
    sleep?: (ms: number) => Promise<void>;
    /** The HTTP exchange (default {@link HttpTransport} on `url`). For tests. */
    transport?: Transport;
    /** Uniform in [0, 1), for the jitter (default `Math.random`). For tests. */
    random?: () => number;
}

export interface CallOptions {
    /** This call's deadline (default the client's `deadlineMs`). */
    deadlineMs?: number;
}

export interface DecideOptions extends CallOptions {
    /** The idempotency key; a random one when not given (the result names it). */
    eventId?: string;
    /** Ask the server to explain its decision rule by rule. */
    explain?: boolean;
}

/** What an attempt ended with, when the server did not answer it with a document. */
interface Failure {
    kind: FailureKind;
    message: string;
    /** `Retry-After` in milliseconds, when the answer had a number there. */
    retryAfterMs?: number;
}

/** An attempt's end. */
type Attempt =
    | { ok: true; body: Record<string, unknown> }
    | { ok: false; refused: ApiError }
    | { ok: false; refused?: undefined; failure: Failure };

/** A call's end after its attempts. */
type Attempts =
    | { ok: true; body: Record<string, unknown>; attempts: number }
    | { ok: false; failure: Failure | "breaker_open"; attempts: number };

const BREAKER_REFUSED = "the circuit breaker is open: no request was sent";

export class Client {
    private readonly transport: Transport;
    private readonly clock: () => number;
    private readonly sleep: (ms: number) => Promise<void>;
    private readonly random: () => number;
    private readonly token: string | undefined;
    private readonly deadlineMs: number;
    private readonly fallbacks: Record<string, Fallback>;
    private readonly maxAttempts: number;
    private readonly backoffMs: number;
    private readonly backoffMaxMs: number;
    private readonly jitter: boolean;
    private readonly scenesTtlMs: number;
    private readonly budget: RetryBudget;
    private readonly circuit: Breaker;
    private scenesCopy: { scenes: Scenes; at: number } | undefined;

    constructor(options: ClientOptions) {
        if (options === null || typeof options !== "object") throw new TypeError("options: an object with `url`");
        if (typeof options.url !== "string") throw new TypeError("url: required, a string");
        this.transport = options.transport ?? new HttpTransport(options.url, options.ca === undefined ? {} : { ca: options.ca });
        this.clock = options.clock ?? (() => performance.now());
        this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
        this.random = options.random ?? Math.random;
        if (options.token !== undefined && (typeof options.token !== "string" || /[\r\n]/.test(options.token))) {
            throw new TypeError("token: a string on one line");
        }
        this.token = options.token;
        this.deadlineMs = positive("deadlineMs", options.deadlineMs, 1000);
        this.fallbacks = { ...(options.fallbacks ?? {}) };
        for (const [scene, choice] of Object.entries(this.fallbacks)) {
            if (typeof choice !== "string" || choice === "") throw new TypeError(`fallbacks.${scene}: "open", "closed" or an outcome's name`);
        }
        this.maxAttempts = whole("maxAttempts", options.maxAttempts, 3, 1);
        this.backoffMs = nonNegative("backoffMs", options.backoffMs, 20);
        this.backoffMaxMs = nonNegative("backoffMaxMs", options.backoffMaxMs, 500);
        this.jitter = options.jitter ?? true;
        this.scenesTtlMs = nonNegative("scenesTtlMs", options.scenesTtlMs, 60000);
        this.budget = new RetryBudget(
            nonNegative("retryBudget.maxTokens", options.retryBudget?.maxTokens, 10),
            nonNegative("retryBudget.tokenRatio", options.retryBudget?.tokenRatio, 0.1),
        );
        const listener = options.onBreakerChange ?? warn;
        this.circuit = new Breaker(
            whole("breaker.failureThreshold", options.breaker?.failureThreshold, 5, 1),
            nonNegative("breaker.openMs", options.breaker?.openMs, 5000),
            listener,
        );
    }

    /** The breaker's state now: `closed`, `open` or `half_open`. */
    get breaker(): BreakerState {
        return this.circuit.state(this.clock());
    }

    /**
     * Decides `event` in `scene`: the server's decision (`decided_by:
     * "server"`), or, when it gives none in time, the scene's fallback
     * (`decided_by: "client"`). Rejects with {@link ApiError} when the
     * server refuses the request, with {@link Unavailable} (`no_fallback`)
     * when it gives no answer and the scene's fallback is not known.
     */
    async decide(scene: string, event: Event, options: DecideOptions = {}): Promise<DecideResult> {
        const start = this.clock();
        const deadline = start + this.callDeadline(options);
        const body = this.decideBody(scene, event, options, "decide");
        await this.freshScenes(deadline);
        const end = await this.attempts(deadline, (timeLeft) => this.post("/v1/decide", { ...body, deadline_ms: Math.floor(timeLeft) }, timeLeft), isDecision);
        if (end.ok) return { ...(end.body as Decision), decided_by: "server", attempts: end.attempts };
        const failure = end.failure === "breaker_open" ? { kind: "breaker_open" as const, message: BREAKER_REFUSED } : end.failure;
        const outcome = this.fallbackOf(scene);
        if (outcome === undefined) {
            throw new Unavailable("no_fallback", end.attempts, `${failure.message} (and no fallback is known for scene \`${scene}\`: name one in the option \`fallbacks\`)`);
        }
        return {
            decided_by: "client",
            scene,
            event_id: body.event_id,
            outcome,
            degraded: true,
            degraded_why: failure.kind,
            attempts: end.attempts,
            error: failure.message,
        };
    }

    /** Evaluates `event` in `scene` as a decision would, changing nothing on the server; never a fallback. */
    async dryRun(scene: string, event: Event, options: DecideOptions = {}): Promise<ServerDecision> {
        const start = this.clock();
        const deadline = start + this.callDeadline(options);
        const body = this.decideBody(scene, event, options, "dry_run");
        const end = await this.attempts(deadline, (timeLeft) => this.post("/v1/decide", { ...body, deadline_ms: Math.floor(timeLeft) }, timeLeft), isDecision);
        return { ...(this.answer(end) as Decision), decided_by: "server", attempts: end.attempts };
    }

    /** Records events without a decision: the server's counts. */
    async record(events: EventToRecord[], options: CallOptions = {}): Promise<EventsRecorded> {
        const start = this.clock();
        const deadline = start + this.callDeadline(options);
        if (!Array.isArray(events)) throw new TypeError("events: an array of {event_id, event}");
        const body = { events: events.map((e, i) => {
            if (e === null || typeof e !== "object" || typeof e.event_id !== "string" || e.event_id === "") throw new TypeError(`events[${i}].event_id: a non-empty string`);
            if (e.event === null || typeof e.event !== "object" || Array.isArray(e.event)) throw new TypeError(`events[${i}].event: an object`);
            return { event_id: e.event_id, event: e.event };
        }) };
        const text = json(body, "events");
        const end = await this.attempts(deadline, (timeLeft) => this.exchange({ method: "POST", path: "/v1/events", headers: {}, body: text, timeoutMs: timeLeft }), isRecorded);
        return this.answer(end) as EventsRecorded;
    }

    /**
     * Changes a list the rules declare (`POST /v1/lists/{list}`): `remove`
     * first, then `add` (until `expires`: ms since the epoch or an RFC 3339
     * time; else the list's `for` from now). Answered once the change is
     * logged; retried as the other calls are (a change given twice changes
     * nothing more).
     */
    async changeList(list: string, change: ListChange, options: CallOptions = {}): Promise<ListChanged> {
        const start = this.clock();
        const deadline = start + this.callDeadline(options);
        if (typeof list !== "string" || list === "") throw new TypeError("list: a non-empty string");
        if (change === null || typeof change !== "object" || Array.isArray(change)) throw new TypeError("change: an object with add, remove or both");
        const body: Record<string, unknown> = {};
        for (const field of ["add", "remove"] as const) {
            const values = change[field];
            if (values === undefined) continue;
            if (!Array.isArray(values) || values.length === 0) throw new TypeError(`${field}: a non-empty array of values`);
            values.forEach((v, i) => {
                if (!["string", "number", "boolean"].includes(typeof v)) throw new TypeError(`${field}[${i}]: a string, a number or a boolean`);
            });
            body[field] = values;
        }
        if (body.add === undefined && body.remove === undefined) throw new TypeError("change: add, remove or both");
        if (change.expires !== undefined) {
            if (body.add === undefined) throw new TypeError("expires goes with add");
            if (typeof change.expires !== "number" && typeof change.expires !== "string") throw new TypeError("expires: ms since the epoch or an RFC 3339 time");
            body.expires = change.expires;
        }
        const text = json(body, "change");
        const path = `/v1/lists/${encodeURIComponent(list)}`;
        const end = await this.attempts(deadline, (timeLeft) => this.exchange({ method: "POST", path, headers: {}, body: text, timeoutMs: timeLeft }), isListChanged);
        return this.answer(end) as ListChanged;
    }

    /** A decision again, as it was answered, within the server's retention. */
    async decision(decisionId: string, options: CallOptions = {}): Promise<Decision> {
        const start = this.clock();
        const deadline = start + this.callDeadline(options);
        if (typeof decisionId !== "string" || decisionId === "") throw new TypeError("decisionId: a non-empty string");
        const path = `/v1/decisions/${encodeURIComponent(decisionId)}`;
        const end = await this.attempts(deadline, (timeLeft) => this.exchange({ method: "GET", path, headers: {}, timeoutMs: timeLeft }), isDecision);
        return this.answer(end) as Decision;
    }

    /** The scenes of the rules in force; the client's copy of them is renewed. */
    async scenes(options: CallOptions = {}): Promise<Scenes> {
        const start = this.clock();
        const deadline = start + this.callDeadline(options);
        const end = await this.attempts(deadline, (timeLeft) => this.exchange({ method: "GET", path: "/v1/scenes", headers: {}, timeoutMs: timeLeft }), isScenes);
        const scenes = this.answer(end) as Scenes;
        this.scenesCopy = { scenes, at: this.clock() };
        return scenes;
    }

    /** Closes the connections kept open (the process may exit without it). */
    close(): void {
        this.transport.close?.();
    }

    private callDeadline(options: CallOptions): number {
        if (options === null || typeof options !== "object") throw new TypeError("options: an object");
        return options.deadlineMs === undefined ? this.deadlineMs : positive("deadlineMs", options.deadlineMs, this.deadlineMs);
    }

    private decideBody(scene: string, event: Event, options: DecideOptions, mode: "decide" | "dry_run") {
        if (typeof scene !== "string" || scene === "") throw new TypeError("scene: a non-empty string");
        if (event === null || typeof event !== "object" || Array.isArray(event)) throw new TypeError("event: an object of the event's fields");
        if (options.eventId !== undefined && (typeof options.eventId !== "string" || options.eventId === "")) throw new TypeError("eventId: a non-empty string");
        const body: { scene: string; event_id: string; event: Event; mode?: "dry_run"; explain?: true } = {
            scene,
            event_id: options.eventId ?? randomUUID(),
            event,
        };
        if (mode === "dry_run") body.mode = "dry_run";
        if (options.explain === true) body.explain = true;
        json(body, "event");
        return body;
    }

    /** An answer, or the call's error. */
    private answer(end: Attempts): Record<string, unknown> {
        if (end.ok) return end.body;
        if (end.failure === "breaker_open") throw new Unavailable("breaker_open", end.attempts, BREAKER_REFUSED);
        throw new Unavailable(end.failure.kind, end.attempts, end.failure.message);
    }

    /** The scene's fallback outcome, if it can be known. */
    private fallbackOf(scene: string): string | undefined {
        const choice = Object.prototype.hasOwnProperty.call(this.fallbacks, scene) ? this.fallbacks[scene] : undefined;
        const published = this.scenesCopy?.scenes.scenes.find((s) => s.name === scene);
        if (choice === "open") return published?.outcomes[0];
        if (choice === "closed") return published?.outcomes[published.outcomes.length - 1];
        if (choice !== undefined) return choice;
        return published?.fallback;
    }

    /**
     * Before a decision: the scenes fetched, once, when the copy is missing
     * or `scenesTtlMs` old. A failure keeps the old copy; a refusal is the
     * call's error.
     */
    private async freshScenes(deadline: number): Promise<void> {
        const now = this.clock();
        if (this.scenesCopy !== undefined && now - this.scenesCopy.at < this.scenesTtlMs) return;
        const timeLeft = deadline - now;
        if (timeLeft <= 0) return;
        const trial = this.circuit.admit(now);
        if (!trial) return;
        const attempt = await this.attempt(() => this.exchange({ method: "GET", path: "/v1/scenes", headers: {}, timeoutMs: timeLeft }), isScenes);
        const at = this.clock();
        if (attempt.ok) {
            this.success(at, trial);
            this.scenesCopy = { scenes: attempt.body as Scenes, at };
        } else if (attempt.refused) {
            this.success(at, trial);
            throw attempt.refused;
        } else {
            this.failed(at, trial, attempt.failure);
        }
    }

    /**
     * A call's attempts: the first, then retries while fewer than
     * `maxAttempts` were made, the budget allows, and the wait ends before
     * the deadline.
     */
    private async attempts(
        deadline: number,
        send: (timeLeft: number) => Promise<TransportResponse>,
        valid: (body: unknown) => boolean,
    ): Promise<Attempts> {
        let made = 0;
        let last: Failure | undefined;
        for (;;) {
            const now = this.clock();
            const trial = this.circuit.admit(now);
            if (!trial) return { ok: false, failure: last ?? "breaker_open", attempts: made };
            const timeLeft = deadline - now;
            if (timeLeft <= 0) {
                this.circuit.release(trial);
                return { ok: false, failure: last ?? { kind: "timeout", message: "no time left for a request: the deadline passed" }, attempts: made };
            }
            made += 1;
            const attempt = await this.attempt(() => send(timeLeft), valid);
            const at = this.clock();
            if (attempt.ok) {
                this.success(at, trial);
                return { ok: true, body: attempt.body, attempts: made };
            }
            if (attempt.refused) {
                this.success(at, trial);
                throw attempt.refused;
            }
            last = attempt.failure;
            const opened = this.failed(at, trial, last);
            if (opened || made >= this.maxAttempts || !this.budget.allowsRetry()) {
                return { ok: false, failure: last, attempts: made };
            }
            let wait = Math.min(this.backoffMaxMs, this.backoffMs * 2 ** (made - 1));
            if (this.jitter) wait = wait / 2 + this.random() * (wait / 2);
            if (last.retryAfterMs !== undefined) wait = Math.max(wait, last.retryAfterMs);
            if (!(at + wait < deadline)) return { ok: false, failure: last, attempts: made };
            await this.sleep(wait);
        }
    }

    private success(at: number, trial: Trial): void {
        this.budget.success();
        this.circuit.success(at, trial);
    }

    /** Counts a failed attempt; true when it opened the breaker. */
    private failed(at: number, trial: Trial, failure: Failure): boolean {
        this.budget.failure();
        return this.circuit.failure(at, trial, failure);
    }

    /** One exchange, classified (the table of docs/clients.md, "A call"). */
    private async attempt(send: () => Promise<TransportResponse>, valid: (body: unknown) => boolean): Promise<Attempt> {
        let res: TransportResponse;
        try {
            res = await send();
        } catch (e) {
            if (e instanceof TransportError) return { ok: false, failure: { kind: e.kind, message: e.message } };
            return { ok: false, failure: { kind: "unreachable", message: e instanceof Error ? e.message : String(e) } };
        }
        const status = res.status;
        if (status >= 200 && status < 300) {
            const body = parse(res.body);
            if (body !== undefined && valid(body)) return { ok: true, body: body as Record<string, unknown> };
            return { ok: false, failure: { kind: "server_error", message: `a ${status} whose body is not the API's JSON: ${snippet(res.body)}` } };
        }
        const error = apiError(res.body);
        const said = error ? `${status} ${error.code}: ${error.message}` : `${status}: ${snippet(res.body)}`;
        if (status === 429 || status === 503) {
            const failure: Failure = { kind: status === 429 ? "overloaded" : "unavailable", message: said };
            const retryAfter = (res.headers["retry-after"] ?? "").trim();
            if (/^[0-9]+$/.test(retryAfter)) failure.retryAfterMs = Number(retryAfter) * 1000;
            return { ok: false, failure };
        }
        if (status >= 400 && status < 500) {
            return {
                ok: false,
                refused: error
                    ? new ApiError(status, error.code, error.message, error.field)
                    : new ApiError(status, "unknown", `${status}: ${snippet(res.body)}`),
            };
        }
        return { ok: false, failure: { kind: "server_error", message: said } };
    }

    private post(path: string, body: object, timeLeft: number): Promise<TransportResponse> {
        return this.exchange({ method: "POST", path, headers: {}, body: JSON.stringify(body), timeoutMs: timeLeft });
    }

    private exchange(req: TransportRequest): Promise<TransportResponse> {
        req.headers.accept = "application/json";
        if (this.token !== undefined) req.headers.authorization = `Bearer ${this.token}`;
        return this.transport.request(req);
    }
}

/** The gRPC retry throttle, in thousandths of a token (no drift from adding 0.1s). */
class RetryBudget {
    private readonly max: number;
    private readonly ratio: number;
    private tokens: number;

    constructor(maxTokens: number, tokenRatio: number) {
        this.max = Math.round(maxTokens * 1000);
        this.ratio = Math.round(tokenRatio * 1000);
        this.tokens = this.max;
    }

    failure(): void {
        this.tokens = Math.max(0, this.tokens - 1000);
    }

    success(): void {
        this.tokens = Math.min(this.max, this.tokens + this.ratio);
    }

    /** More than half of the tokens remain. */
    allowsRetry(): boolean {
        return this.tokens * 2 > this.max;
    }
}

/** An admitted attempt: `trial` when it is the half-open breaker's one trial. */
type Trial = { trial: boolean } | null;

class Breaker {
    private current: BreakerState = "closed";
    private failures = 0;
    private openedAt = 0;
    private trialInFlight = false;

    constructor(
        private readonly threshold: number,
        private readonly openMs: number,
        private readonly listener: (change: BreakerChange) => void,
    ) {}

    state(now: number): BreakerState {
        if (this.current === "open" && now - this.openedAt >= this.openMs) this.move("half_open", now);
        return this.current;
    }

    /** Lets an attempt go out, or refuses it (null). */
    admit(now: number): Trial {
        const state = this.state(now);
        if (state === "closed") return { trial: false };
        if (state === "half_open" && !this.trialInFlight) {
            this.trialInFlight = true;
            return { trial: true };
        }
        return null;
    }

    /** An admitted attempt that was not sent. */
    release(admitted: Trial): void {
        if (admitted?.trial) this.trialInFlight = false;
    }

    success(now: number, admitted: Trial): void {
        if (admitted?.trial) this.trialInFlight = false;
        this.failures = 0;
        if (this.current === "half_open" && admitted?.trial) this.move("closed", now);
    }

    /** Counts a failure; true when it opened the breaker. */
    failure(now: number, admitted: Trial, failure: Failure): boolean {
        if (admitted?.trial) {
            this.trialInFlight = false;
            if (this.current === "half_open") {
                this.openedAt = now;
                this.move("open", now, failure);
                return true;
            }
        }
        if (this.current !== "closed") return false;
        this.failures += 1;
        if (this.failures >= this.threshold) {
            this.openedAt = now;
            this.move("open", now, failure);
            return true;
        }
        return false;
    }

    private move(to: BreakerState, now: number, failure?: Failure): void {
        const change: BreakerChange = { from: this.current, to, atMs: now };
        if (failure) change.failure = { kind: failure.kind, message: failure.message };
        this.current = to;
        if (to === "closed") this.failures = 0;
        try {
            this.listener(change);
        } catch {
            // A listener's fault is not the call's.
        }
    }
}

function warn(change: BreakerChange): void {
    const cause = change.failure ? ` after ${change.failure.kind}: ${change.failure.message}` : "";
    console.warn(`cepheid client: circuit breaker ${change.from} -> ${change.to} at ${Math.round(change.atMs)} ms${cause}`);
}

function parse(text: string): unknown {
    try {
        return JSON.parse(text);
    } catch {
        return undefined;
    }
}

function isObject(body: unknown): body is Record<string, unknown> {
    return body !== null && typeof body === "object" && !Array.isArray(body);
}

function isDecision(body: unknown): boolean {
    return isObject(body) && typeof body.decision_id === "string" && typeof body.outcome === "string";
}

function isRecorded(body: unknown): boolean {
    return isObject(body) && typeof body.recorded === "number" && typeof body.repeated === "number";
}

function isListChanged(body: unknown): boolean {
    return isObject(body) && typeof body.list === "string" && typeof body.entry === "number";
}

function isScenes(body: unknown): boolean {
    return isObject(body) && Array.isArray(body.scenes) && body.scenes.every((s) =>
        isObject(s) && typeof s.name === "string" && typeof s.fallback === "string"
        && Array.isArray(s.outcomes) && s.outcomes.length > 0 && s.outcomes.every((o) => typeof o === "string"));
}

function apiError(text: string): { code: string; message: string; field?: string } | undefined {
    const body = parse(text);
    if (!isObject(body) || !isObject(body.error)) return undefined;
    const { code, message, field } = body.error;
    if (typeof code !== "string" || typeof message !== "string") return undefined;
    return typeof field === "string" ? { code, message, field } : { code, message };
}

function snippet(text: string): string {
    const t = text.length > 200 ? `${text.slice(0, 200)}...` : text;
    return JSON.stringify(t);
}

function json(value: unknown, what: string): string {
    try {
        return JSON.stringify(value);
    } catch (e) {
        throw new TypeError(`${what}: not JSON: ${(e as Error).message}`);
    }
}

function positive(name: string, value: unknown, fallback: number): number {
    if (value === undefined) return fallback;
    if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) throw new RangeError(`${name}: a number above 0, not ${String(value)}`);
    return value;
}

function nonNegative(name: string, value: unknown, fallback: number): number {
    if (value === undefined) return fallback;
    if (typeof value !== "number" || !Number.isFinite(value) || value < 0) throw new RangeError(`${name}: a number at least 0, not ${String(value)}`);
    return value;
}

function whole(name: string, value: unknown, fallback: number, min: number): number {
    if (value === undefined) return fallback;
    if (typeof value !== "number" || !Number.isInteger(value) || value < min) throw new RangeError(`${name}: a whole number at least ${min}, not ${String(value)}`);
    return value;
}
