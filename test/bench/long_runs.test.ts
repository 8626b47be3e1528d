import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = new URL('../../', import.meta.url).pathname;
const tsx = join(ROOT, 'node_modules/.bin/tsx');
const run = (script: string, args: string[]) => spawnSync(tsx, [script, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });

// The soak and chaos runs themselves take minutes and are not part of the suite (docs/reliability.md);
// their flags are bounded, and a bad one is refused before any server starts.
describe('npm run soak / npm run chaos flags', () => {
  it.each([
    ['bench/soak.ts', ['--duration', 'forever'], '--duration: "forever" is not a duration'],
    ['bench/soak.ts', ['--duration', '5h'], '--duration: 5h is outside 10 s .. 14400 s'],
    ['bench/soak.ts', ['--rate', '0'], '--rate: 0 is not an integer in 1 .. 20000'],
    ['bench/soak.ts', ['--duration', '20s', '--interval', '30s'], '--interval must not exceed --duration'],
    ['bench/chaos.ts', ['--only', 'meteor'], 'chaos: unknown experiment "meteor"'],
    ['bench/chaos.ts', ['--jwks-down', '2d'], '--jwks-down: "2d" is not a duration'],
    ['bench/chaos.ts', ['--login-window', '20s', '--store-outage', '10s'], '--store-outage must leave 15 s of --login-window'],
  ])('%s %j is refused with exit code 2', (script, args, message) => {
    const r = run(script, args);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toContain(message);
  }, 60_000);
});

// A short real soak (10 s at 100/s against the built server): the script still starts its server
// with a valid config, drives its token rotation and key rotations, and reports a pass.
describe('npm run soak, 10 s', () => {
  it('answers every Check, rotates tokens and a key, writes its report and exits 0', () => {
    const out = mkdtempSync(join(tmpdir(), 'pc-soak-'));
    try {
      const r = run('bench/soak.ts', ['--duration', '10s', '--rate', '100', '--warmup', '1s', '--interval', '5s', '--tokens', '4', '--token-every', '1s', '--rotate-every', '5s', '--out', out]);
      const output = r.stdout + r.stderr;
      expect(r.status, output).toBe(0);
      expect(output).toMatch(/10 s at 100 Checks\/s: \d+ answered at (9\d|10\d)\/s, \*\*0 errors\*\*/);
      expect(output).toMatch(/key rotations: [12] \(0 failed\)/);
      expect(output).toContain('PASS');
      expect(readdirSync(out).filter((f) => f.startsWith('soak-') && f.endsWith('.json'))).toHaveLength(1);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 90_000);
});
