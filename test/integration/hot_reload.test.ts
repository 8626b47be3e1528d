import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { httpCheckRequest } from '../../src/extauthz/client.js';
import { EXAMPLE_POLICIES, metricValue, startSidecar } from '../helpers/sidecar.js';
import { tempDir } from '../helpers/temp_dir.js';

describe('policy hot reload on file change', () => {
  it('switches to an edited set within 1 s under continuous traffic, with no failed check, and keeps the last good set when the edit is broken', async () => {
    const dir = join(tempDir('pc-reload'), 'policies');
    cpSync(EXAMPLE_POLICIES, dir, { recursive: true });
    const sidecar = await startSidecar({ policies: { dir, watch: true, watch_debounce_ms: 100 } });
    const publicCheck = httpCheckRequest('GET', '/public/readme');
    let failures = 0;
    let checks = 0;
    let allowed = true;
    let stop = false;
    // Bounded load: at most 20 s or until the test says stop, one request in flight.
    const traffic = (async () => {
      const end = Date.now() + 20_000;
      while (!stop && Date.now() < end) {
        try {
          const res = await sidecar.client.check(publicCheck);
          allowed = res.httpResponse.case === 'okResponse';
          checks++;
        } catch {
          failures++;
        }
      }
    })();
    const until = async (predicate: () => boolean, timeoutMs: number) => {
      const started = Date.now();
      while (!predicate()) {
        if (Date.now() - started > timeoutMs) return -1;
        await new Promise((r) => setTimeout(r, 10));
      }
      return Date.now() - started;
    };
    try {
      expect(await until(() => checks > 20, 5000)).toBeGreaterThanOrEqual(0);
      const file = join(dir, 'public.cedar');
      const original = readFileSync(file, 'utf8');
      writeFileSync(file, original.replace('permit', 'forbid'));
      const flipped = await until(() => !allowed, 1000);
      expect(flipped, 'the forbid was not in force within 1 s').toBeGreaterThanOrEqual(0);

      writeFileSync(file, 'forbid (principal, action, resource) when { 1 + };');
      expect(await until(() => sidecar.logs.some((l) => l.msg === 'policy reload rejected; the last good set keeps serving'), 2000)).toBeGreaterThanOrEqual(0);
      const before = checks;
      await until(() => checks > before + 20, 5000);
      expect(allowed).toBe(false); // still the edited (forbid) set, not nothing

      writeFileSync(file, original);
      expect(await until(() => allowed, 1000)).toBeGreaterThanOrEqual(0);
      expect(failures).toBe(0);
      expect(await metricValue(sidecar.metrics, 'auth_policy_reload_total', { result: 'failure' })).toBeGreaterThanOrEqual(1);
      expect(await metricValue(sidecar.metrics, 'auth_policy_reload_total', { result: 'success' })).toBeGreaterThanOrEqual(3);
    } finally {
      stop = true;
      await traffic;
      await sidecar.close();
    }
  });
});
