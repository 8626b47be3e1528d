import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/telemetry/metrics.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const RULES = join(ROOT, 'deploy/prometheus/alerts.yaml');
const TESTS = join(ROOT, 'deploy/prometheus/tests');
const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' }).status === 0;
if (!promtool) console.warn('promtool not found: install the Debian package prometheus (.ci/run does); the rule checks are skipped here');

/** Metrics the rules name that belong to features still to come (DPoP). */
describe('Prometheus alerting rules', () => {
  it.skipIf(!promtool)('pass promtool check rules', () => {
    const r = spawnSync('promtool', ['check', 'rules', RULES], { encoding: 'utf8' });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('SUCCESS: 14 rules found');
  });

  it.skipIf(!promtool)('fire on each synthetic incident and stay quiet on healthy series (promtool test rules)', () => {
    const files = readdirSync(TESTS).filter((f) => f.endsWith('.yaml')).map((f) => join(TESTS, f));
    const r = spawnSync('promtool', ['test', 'rules', ...files], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout.match(/SUCCESS/g)).toHaveLength(files.length);
  });

  it('name only metrics of the catalog', async () => {
    const names = new Set((await createMetrics().registry.getMetricsAsJSON()).map((m) => m.name));
    const used = new Set([...readFileSync(RULES, 'utf8').matchAll(/\b(auth_[a-z_]+?)(?:_bucket)?\b(?=[{[)\s])/g)].map((m) => m[1]!));
    expect(used.size).toBeGreaterThan(8);
    for (const name of used) expect(names.has(name), `${name} is not in the metric catalog`).toBe(true);
  });
});

describe('Grafana dashboard', () => {
  it('is valid JSON whose every query names catalog metrics only, covering the decision path and the token module', async () => {
    const dashboard = JSON.parse(readFileSync(join(ROOT, 'deploy/grafana/portcullis.json'), 'utf8')) as { uid: string; panels: Array<{ title: string; targets: Array<{ expr: string }> }> };
    expect(dashboard.uid).toBe('portcullis');
    const names = new Set((await createMetrics().registry.getMetricsAsJSON()).map((m) => m.name));
    const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));
    const used = new Set(exprs.flatMap((e) => [...e.matchAll(/\b(auth_[a-z_]+?)(?:_bucket|_count|_sum)?\b(?=[{[)\s])/g)].map((m) => m[1]!)));
    for (const name of used) expect(names.has(name), `${name} is not in the metric catalog`).toBe(true);
    for (const family of ['auth_authz_decisions_total', 'auth_authz_latency_seconds', 'auth_authz_denied_total', 'auth_authz_policies_evaluated', 'auth_jwks_fetch_duration_seconds', 'auth_login_attempts_total', 'auth_mfa_attempts_total', 'auth_token_issuance_duration_seconds', 'auth_refresh_token_reuse_total']) {
      expect(used.has(family), family).toBe(true);
    }
  });
});
