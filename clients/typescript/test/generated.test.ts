// src/api.gen.ts is what the pinned openapi-typescript makes of
// docs/api/openapi.yaml now: a change of the document not followed by
// `npm run generate` fails here.
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";

const PACKAGE = path.resolve(__dirname, "../..");

test("src/api.gen.ts is generated from docs/api/openapi.yaml by the pinned generator", { timeout: 120_000 }, () => {
    const pinned = (JSON.parse(fs.readFileSync(path.join(PACKAGE, "package.json"), "utf8")) as { devDependencies: Record<string, string> }).devDependencies["openapi-typescript"];
    const installed = (JSON.parse(fs.readFileSync(path.join(PACKAGE, "node_modules/openapi-typescript/package.json"), "utf8")) as { version: string }).version;
    assert.match(pinned ?? "", /^\d+\.\d+\.\d+$/, "openapi-typescript is pinned to an exact version");
    assert.equal(installed, pinned, "the generator installed is the pinned one (npm ci)");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cepheid-ts-gen-"));
    try {
        const out = path.join(dir, "api.gen.ts");
        const run = spawnSync(process.execPath, [path.join(PACKAGE, "node_modules/openapi-typescript/bin/cli.js"), "../../docs/api/openapi.yaml", "-o", out], { cwd: PACKAGE, encoding: "utf8" });
        assert.equal(run.status, 0, `openapi-typescript failed:\n${run.stdout}\n${run.stderr}`);
        const fresh = fs.readFileSync(out, "utf8");
        const kept = fs.readFileSync(path.join(PACKAGE, "src/api.gen.ts"), "utf8");
        assert.ok(fresh.includes("DecideRequest"), "the generator made the document's types");
        assert.ok(fresh === kept, "src/api.gen.ts is not what docs/api/openapi.yaml gives now: run `npm run generate` in clients/typescript and commit it");
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
});
