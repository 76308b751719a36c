#!/usr/bin/env node
// `npm run prepare` (npm runs it on `npm install` of this folder, `npm ci`
// here, and `npm pack`): compiles src/ to dist/ with the pinned
// typescript. npm links a folder it installs (`npm install
// ./clients/typescript`) without installing that folder's
// devDependencies, so when the pinned compiler is missing this first
// installs the pinned tools from the committed lock file (`npm ci`).
"use strict";
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const here = path.resolve(__dirname, "..");
const tsc = path.join(here, "node_modules", "typescript", "bin", "tsc");

function run(command, args) {
    const out = spawnSync(command, args, { cwd: here, stdio: "inherit" });
    if (out.error) throw out.error;
    if (out.status !== 0) process.exit(out.status ?? 1);
}

if (!fs.existsSync(tsc)) {
    console.error("@cepheid/client: installing its pinned build tools (npm ci in " + here + ")");
    const npm = process.env.npm_execpath;
    const args = ["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--quiet"];
    if (npm && npm.endsWith(".js")) run(process.execPath, [npm, ...args]);
    else run(process.platform === "win32" ? "npm.cmd" : "npm", args);
}
run(process.execPath, [tsc, "-p", "tsconfig.json"]);
