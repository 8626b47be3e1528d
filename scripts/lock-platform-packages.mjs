#!/usr/bin/env node
/**
 * Records every platform-specific optional dependency (buf, esbuild, rollup binaries for other
 * operating systems) in package-lock.json.
 *
 * Why: the npm registry mirror this project is built against serves only the linux packages of
 * those families. `npm install` then silently leaves the others out of the lock, and `npm ci`
 * refuses a lock that lacks an optional dependency. An entry with just a version and
 * `optional: true` satisfies `npm ci`; on each machine npm installs the package for its own
 * platform and skips (tolerates the absence of) the rest.
 *
 * Run after any `npm install` that changes the lock: `npm run lock:platforms`.
 */
import { readFileSync, writeFileSync } from 'node:fs';

const file = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(file, 'utf8'));
const packages = lock.packages;
let added = 0;
for (const [path, entry] of Object.entries(packages)) {
  for (const [name, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const nested = path ? `${path}/node_modules/${name}` : `node_modules/${name}`;
    if (packages[nested] || packages[`node_modules/${name}`]) continue;
    packages[`node_modules/${name}`] = { version, ...(entry.dev ? { dev: true } : {}), optional: true };
    added++;
  }
}
const sorted = Object.fromEntries(Object.entries(packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b))));
lock.packages = sorted;
writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`lock-platform-packages: ${added} optional platform package(s) recorded`);
