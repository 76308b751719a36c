// A real `cepheid serve` for the tests: the binary from $CEPHEID_BIN,
// `patterns/risk`, a state folder of its own, a free port on 127.0.0.1.
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import * as os from "node:os";
import * as path from "node:path";

export const ROOT = path.resolve(__dirname, "../../../..");

/** The binary, or a clear failure: these tests never skip. */
export function binary(): string {
    const bin = process.env.CEPHEID_BIN;
    if (bin === undefined || bin === "") {
        throw new Error("CEPHEID_BIN is not set: the real-server tests need the `cepheid` binary's path (e.g. CEPHEID_BIN=target/debug/cepheid)");
    }
    if (!fs.existsSync(bin)) throw new Error(`CEPHEID_BIN=${bin}: no such file`);
    return bin;
}

export interface ServerOptions {
    args?: string[];
    /** For https: the certificate to trust; for tokens: the token to send. */
    ca?: Buffer;
    token?: string;
}

export class Server {
    readonly url: string;
    private stopped = false;

    private constructor(readonly child: ChildProcess, url: string, readonly dir: string, private readonly opts: ServerOptions) {
        this.url = url;
    }

    static async start(opts: ServerOptions = {}): Promise<Server> {
        const bin = binary();
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cepheid-ts-"));
        const child = spawn(bin, ["serve", path.join(ROOT, "patterns/risk"), "--state", path.join(dir, "state"), "--listen", "127.0.0.1:0", ...(opts.args ?? [])], {
            stdio: ["ignore", "pipe", "pipe"],
        });
        let stderr = "";
        child.stderr!.on("data", (d: Buffer) => {
            stderr += d.toString();
        });
        const url = await new Promise<string>((resolve, reject) => {
            let out = "";
            const guard = setTimeout(() => reject(new Error(`cepheid serve said no address within 60 s; its standard error:\n${stderr}`)), 60_000);
            child.stdout!.on("data", (d: Buffer) => {
                out += d.toString();
                const m = /listening on (https?:\/\/\S+)/.exec(out);
                if (m) {
                    clearTimeout(guard);
                    resolve(m[1]!.replace(/\/$/, ""));
                }
            });
            child.on("exit", (code, signal) => {
                clearTimeout(guard);
                reject(new Error(`cepheid serve exited (${code ?? signal}) before listening; its standard error:\n${stderr}`));
            });
        });
        child.stdout!.resume();
        const server = new Server(child, url, dir, opts);
        for (let i = 0; ; i++) {
            const res = await server.get("/readyz").catch(() => undefined);
            if (res?.status === 200) break;
            if (i > 600) throw new Error(`${url}/readyz never 200; standard error:\n${stderr}`);
            await new Promise((r) => setTimeout(r, 100));
        }
        return server;
    }

    /** A GET on a connection of its own (closed after it). */
    get(p: string): Promise<{ status: number; body: string }> {
        const u = new URL(this.url + p);
        const headers: Record<string, string> = { connection: "close" };
        if (this.opts.token) headers.authorization = `Bearer ${this.opts.token}`;
        return new Promise((resolve, reject) => {
            const req = (u.protocol === "https:" ? https : http).request(
                { hostname: u.hostname, port: u.port, path: u.pathname, method: "GET", headers, agent: false, ...(this.opts.ca ? { ca: this.opts.ca } : {}) },
                (res) => {
                    let body = "";
                    res.setEncoding("utf8");
                    res.on("data", (d: string) => (body += d));
                    res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
                    res.on("error", reject);
                },
            );
            req.setTimeout(10_000, () => req.destroy(new Error("no answer in 10 s")));
            req.on("error", reject);
            req.end();
        });
    }

    /** The server's counters, by name (with their labels, as written). */
    async metrics(): Promise<Map<string, number>> {
        const res = await this.get("/metrics");
        if (res.status !== 200) throw new Error(`/metrics: ${res.status} ${res.body}`);
        const out = new Map<string, number>();
        for (const line of res.body.split("\n")) {
            if (line.startsWith("#") || line.trim() === "") continue;
            const at = line.lastIndexOf(" ");
            out.set(line.slice(0, at), Number(line.slice(at + 1)));
        }
        return out;
    }

    /**
     * The state's `decisions.jsonl` once it holds the decision of event
     * `eventId`. The service writes that file on a thread of its own,
     * after the answers and in the order it decided: once a decision is
     * in it, every decision before it is too.
     */
    async decisionsUpTo(eventId: string): Promise<string> {
        const file = path.join(this.dir, "state", "decisions.jsonl");
        const since = Date.now();
        for (;;) {
            const text = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
            if (text.includes(`"${eventId}"`)) return text;
            if (Date.now() - since > 60_000) throw new Error(`${file} has no decision of ${eventId} after 60 s:\n${text}`);
            await new Promise((r) => setTimeout(r, 10));
        }
    }

    /**
     * Sends `sig`; for SIGSTOP, resolves once every thread of the server
     * is stopped. `kill` only queues a stop: one thread takes it and then
     * stops the others, and on a loaded machine the rest can run, and
     * answer a request, in between.
     */
    async signal(sig: NodeJS.Signals): Promise<void> {
        this.child.kill(sig);
        if (sig !== "SIGSTOP") return;
        const pid = this.child.pid!;
        const since = Date.now();
        while (!allStopped(pid)) {
            if (Date.now() - since > 60_000) throw new Error(`cepheid serve (pid ${pid}) not stopped 60 s after SIGSTOP`);
            await new Promise((r) => setTimeout(r, 2));
        }
    }

    /** Killed at once; resolves when it has exited. */
    async kill(): Promise<void> {
        if (this.stopped) return;
        this.stopped = true;
        if (this.child.exitCode !== null || this.child.signalCode !== null) return;
        const exited = new Promise((r) => this.child.once("exit", r));
        this.child.kill("SIGCONT");
        this.child.kill("SIGKILL");
        await exited;
    }

    async stop(): Promise<void> {
        await this.kill();
        fs.rmSync(this.dir, { recursive: true, force: true });
    }
}

/** A self-signed certificate for 127.0.0.1 (openssl), its key and its folder. */
export function selfSigned(): { dir: string; cert: string; key: string } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cepheid-ts-tls-"));
    const cert = path.join(dir, "cert.pem");
    const key = path.join(dir, "key.pem");
    const out = spawnSync("openssl", [
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
        "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert,
    ], { encoding: "utf8" });
    if (out.status !== 0) throw new Error(`openssl could not make a certificate: ${out.error?.message ?? out.stderr}`);
    return { dir, cert, key };
}

/**
 * A TCP proxy before the server that can lose one answer: armed, it
 * passes the next request on, and when the server's answer comes, resets
 * the client's connection instead of passing it back (a decision taken,
 * its answer lost).
 */
export class LosingProxy {
    loseNextAnswer = false;
    lost = 0;
    connections = 0;
    private readonly sockets = new Set<import("node:net").Socket>();

    private constructor(private readonly server: import("node:net").Server, readonly url: string) {}

    static async start(target: string): Promise<LosingProxy> {
        const net = await import("node:net");
        const t = new URL(target);
        let proxy: LosingProxy | undefined;
        const server = net.createServer((client) => {
            const p = proxy!;
            p.connections += 1;
            const upstream = net.connect(Number(t.port), t.hostname);
            p.sockets.add(client).add(upstream);
            client.on("close", () => p.sockets.delete(client));
            upstream.on("close", () => p.sockets.delete(upstream));
            client.on("data", (d) => upstream.write(d));
            upstream.on("data", (d) => {
                if (p.loseNextAnswer) {
                    p.loseNextAnswer = false;
                    p.lost += 1;
                    client.resetAndDestroy();
                    upstream.destroy();
                    return;
                }
                client.write(d);
            });
            client.on("error", () => upstream.destroy());
            upstream.on("error", () => client.destroy());
            client.on("end", () => upstream.end());
            upstream.on("end", () => client.end());
        });
        await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
        const address = server.address() as import("node:net").AddressInfo;
        proxy = new LosingProxy(server, `http://127.0.0.1:${address.port}`);
        return proxy;
    }

    close(): void {
        for (const s of this.sockets) s.destroy();
        this.server.close();
    }
}

/** Whether every thread of `pid` is stopped (state T in /proc). */
function allStopped(pid: number): boolean {
    const tasks = fs.readdirSync(`/proc/${pid}/task`);
    return tasks.every((tid) => {
        let stat: string;
        try {
            stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
        } catch {
            return true; // the thread has exited
        }
        return stat.slice(stat.lastIndexOf(")") + 2).startsWith("T");
    });
}
