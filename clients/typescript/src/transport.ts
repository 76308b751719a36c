/**
 * The transport: one HTTP exchange, nothing else (no retry, no deadline
 * but the timeout it is given). The client's behaviour is all above it,
 * so the cases (clients/cases.json) run the client over a scripted
 * transport on an injected clock, and the real one is Node's own
 * `node:http`/`node:https` with a keep-alive `Agent` (no runtime
 * dependency).
 */
import * as fs from "node:fs";
import * as http from "node:http";
import * as https from "node:https";

/** One request: `path` is the API's (`/v1/decide`), the transport adds its base. */
export interface TransportRequest {
    method: "GET" | "POST";
    path: string;
    /** Header names in lower case. */
    headers: Record<string, string>;
    /** The JSON text of the body, when there is one. */
    body?: string;
    /** The attempt's timeout: the call's time left, in milliseconds. */
    timeoutMs: number;
}

/** An answer, whatever its status. */
export interface TransportResponse {
    status: number;
    /** Header names in lower case. */
    headers: Record<string, string>;
    body: string;
}

/**
 * An exchange that got no answer: `unreachable` (no connection, or the
 * connection lost before the answer) or `timeout` (no answer within the
 * attempt's timeout; the request was abandoned).
 */
export class TransportError extends Error {
    readonly kind: "unreachable" | "timeout";

    constructor(kind: "unreachable" | "timeout", message: string) {
        super(message);
        this.name = "TransportError";
        this.kind = kind;
    }
}

/** What the client asks of a transport. */
export interface Transport {
    /** Resolves with the answer, or rejects with a {@link TransportError}. */
    request(req: TransportRequest): Promise<TransportResponse>;
    /** Closes the connections kept open. */
    close?(): void;
}

/** Options of {@link HttpTransport}. */
export interface HttpTransportOptions {
    /** Certificates to trust for `https://`: a PEM file's path, or its contents. */
    ca?: string | Buffer;
}

/** The largest answer read (bytes): a longer one is a lost connection. */
const MAX_ANSWER_BYTES = 64 * 1024 * 1024;

/**
 * HTTP/1.1 over `node:http` or `node:https`, one keep-alive `Agent` per
 * transport: calls in a row reuse one connection.
 */
export class HttpTransport implements Transport {
    private readonly base: URL;
    private readonly basePath: string;
    private readonly agent: http.Agent;
    private readonly secure: boolean;

    constructor(url: string, options: HttpTransportOptions = {}) {
        let base: URL;
        try {
            base = new URL(url);
        } catch {
            throw new TypeError(`url: not a URL: ${JSON.stringify(url)}`);
        }
        if (base.protocol !== "http:" && base.protocol !== "https:") {
            throw new TypeError(`url: http:// or https:// only, not ${base.protocol}//`);
        }
        this.base = base;
        this.basePath = base.pathname.replace(/\/+$/, "");
        this.secure = base.protocol === "https:";
        // Idle connections are closed after 15 s, before the server closes
        // them (its idle limit is 30 s), so that few requests are written
        // on a connection the server is closing (that is an `unreachable`
        // attempt, retried, but a failure the breaker counts).
        const keep = { keepAlive: true, timeout: 15_000 };
        if (this.secure) {
            const ca = options.ca === undefined ? undefined
                : typeof options.ca === "string" ? readCa(options.ca) : options.ca;
            this.agent = new https.Agent({ ...keep, ...(ca === undefined ? {} : { ca }) });
        } else {
            this.agent = new http.Agent(keep);
        }
    }

    request(req: TransportRequest): Promise<TransportResponse> {
        return new Promise((resolve, reject) => {
            let settled = false;
            let timedOut = false;
            const finish = (error: TransportError | null, response?: TransportResponse) => {
                if (settled) return;
                settled = true;
                clearTimeout(timer);
                if (error) reject(error);
                else resolve(response as TransportResponse);
            };
            const headers: Record<string, string | number> = { ...req.headers };
            if (req.body !== undefined) {
                headers["content-type"] = "application/json";
                headers["content-length"] = Buffer.byteLength(req.body);
            }
            const options: http.RequestOptions = {
                protocol: this.base.protocol,
                hostname: this.base.hostname.replace(/^\[|\]$/g, ""),
                port: this.base.port || (this.secure ? 443 : 80),
                path: this.basePath + req.path,
                method: req.method,
                headers,
                agent: this.agent,
            };
            const request = (this.secure ? https.request : http.request)(options, (res) => {
                const chunks: Buffer[] = [];
                let size = 0;
                res.on("data", (chunk: Buffer) => {
                    size += chunk.length;
                    if (size > MAX_ANSWER_BYTES) {
                        request.destroy(new Error(`an answer over ${MAX_ANSWER_BYTES} bytes`));
                        return;
                    }
                    chunks.push(chunk);
                });
                res.on("end", () => {
                    const out: Record<string, string> = {};
                    for (const [name, value] of Object.entries(res.headers)) {
                        if (value !== undefined) out[name.toLowerCase()] = Array.isArray(value) ? value.join(", ") : value;
                    }
                    finish(null, { status: res.statusCode ?? 0, headers: out, body: Buffer.concat(chunks).toString("utf8") });
                });
                res.on("aborted", () => finish(lost("the connection was lost before the whole answer")));
                res.on("error", (e) => finish(timedOut ? noAnswer(req.timeoutMs) : lost(e.message)));
            });
            const timer = setTimeout(() => {
                timedOut = true;
                finish(noAnswer(req.timeoutMs));
                request.destroy();
            }, Math.max(0, req.timeoutMs));
            request.on("error", (e: NodeJS.ErrnoException) => {
                finish(timedOut ? noAnswer(req.timeoutMs) : lost(describe(e)));
            });
            if (req.body !== undefined) request.end(req.body);
            else request.end();
        });
    }

    close(): void {
        this.agent.destroy();
    }
}

function readCa(path: string): Buffer {
    try {
        return fs.readFileSync(path);
    } catch (e) {
        throw new TypeError(`ca: cannot read ${path}: ${(e as Error).message}`);
    }
}

function noAnswer(timeoutMs: number): TransportError {
    return new TransportError("timeout", `no answer within ${Math.floor(timeoutMs)} ms`);
}

function lost(message: string): TransportError {
    return new TransportError("unreachable", message);
}

function describe(e: NodeJS.ErrnoException): string {
    if (e.code === "ECONNREFUSED") return `no connection: ${e.message}`;
    if (e.code === "ECONNRESET" || e.message === "socket hang up") return `the connection was lost before the answer: ${e.message}`;
    return e.message;
}
