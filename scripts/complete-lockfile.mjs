#!/usr/bin/env node
// The npm registry reachable here serves only the platform packages of this machine, so `npm install`
// records rollup's other-platform optional binaries (@rollup/rollup-<os>-<cpu>) without lock entries,
// and `npm ci` then refuses the lock as out of sync. This adds the missing entries, with the os/cpu
// fields that make npm skip them on every other platform without fetching anything.
// Run after any `npm install` that rewrites package-lock.json:  node scripts/complete-lockfile.mjs
import { readFileSync, renameSync, writeFileSync } from 'node:fs';

const path = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(path, 'utf8'));
const packages = lock.packages;
const cpus = ['arm64', 'x64', 'ia32', 'loong64', 'ppc64', 'riscv64', 's390x', 'arm'];
let added = 0;
for (const [key, meta] of Object.entries(packages)) {
  if (!key.endsWith('node_modules/rollup') || !meta.optionalDependencies) continue;
  for (const [name, version] of Object.entries(meta.optionalDependencies)) {
    const entryKey = `node_modules/${name}`;
    if (packages[entryKey]) continue;
    const m = /^@rollup\/rollup-([a-z0-9]+)-(.+)$/.exec(name);
    if (!m) continue;
    const os = m[1];
    const rest = m[2];
    const cpu = cpus.find((c) => rest === c || rest.startsWith(`${c}-`)) ?? rest;
    const libc = rest.endsWith('-musl') || rest.endsWith('-musleabihf') ? ['musl'] : rest.endsWith('-gnu') || rest.endsWith('-gnueabihf') ? ['glibc'] : undefined;
    packages[entryKey] = {
      version,
      cpu: [cpu],
      dev: true,
      license: 'MIT',
      ...(libc ? { libc } : {}),
      optional: true,
      os: [os],
      peer: undefined,
    };
    added++;
  }
}
lock.packages = Object.fromEntries(Object.entries(packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a < b ? -1 : a > b ? 1 : 0)));
writeFileSync(new URL('../package-lock.json.tmp', import.meta.url), `${JSON.stringify(lock, null, 2)}\n`);
renameSync(new URL('../package-lock.json.tmp', import.meta.url), path);
console.log(`complete-lockfile: added ${added} platform entries`);
