import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpCheckRequest } from '../../src/extauthz/client.js';
import { EXAMPLE_POLICIES, healthCheck, metricValue, startSidecar, type Sidecar } from '../helpers/sidecar.js';
import { tempDir } from '../helpers/temp_dir.js';

const KEY = 'admin-key-0123456789abcdef';
let sidecar: Sidecar;
let policies: string;
let base: string;

beforeAll(async () => {
  policies = join(tempDir('pc-admin'), 'policies');
  cpSync(EXAMPLE_POLICIES, policies, { recursive: true });
  // No file watcher: this file tests the admin reload alone (a watched write would reload too, racing the POST).
  sidecar = await startSidecar({ policies: { dir: policies, watch: false }, admin: { api_key: KEY } });
  base = `http://127.0.0.1:${sidecar.server.adminPort}`;
});

afterAll(async () => {
  await sidecar?.close();
});

const get = (path: string, headers: Record<string, string> = {}) => fetch(`${base}${path}`, { headers });

describe('admin listener', () => {
  it('serves Prometheus metrics without credentials, with the decision catalog and process metrics', async () => {
    await sidecar.client.check(httpCheckRequest('GET', '/public/x'));
    const res = await get('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    for (const name of ['auth_authz_policies_evaluated_bucket', 'auth_authz_decisions_total', 'auth_authz_latency_seconds_bucket', 'auth_policy_reload_total', 'process_cpu_seconds_total', 'nodejs_heap_size_used_bytes']) {
      expect(text).toContain(name);
    }
  });

  it('reports health and readiness', async () => {
    expect(await (await get('/health')).json()).toEqual({ status: 'ok' });
    const ready = await get('/ready');
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', checks: { policies: true, draining: false } });
  });

  it.each([
    ['no credentials', {}],
    ['a wrong key', { authorization: 'Bearer admin-key-0123456789abcdeX' }],
    ['a shorter key', { authorization: 'Bearer admin' }],
    ['a longer key', { authorization: `Bearer ${KEY}${KEY}` }],
    ['a wrong basic password', { authorization: `Basic ${Buffer.from('admin:nope').toString('base64')}` }],
    ['an unknown scheme', { authorization: `Token ${KEY}` }],
  ])('refuses /admin/* with %s, always the same 401', async (_name, headers) => {
    const res = await get('/admin/policies', headers);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="portcullis-admin"');
    expect(await res.json()).toEqual({ error: 'unauthorized' });
  });

  it('accepts the key as Bearer token or basic-auth password', async () => {
    const bearer = await get('/admin/policies', { authorization: `Bearer ${KEY}` });
    expect(bearer.status).toBe(200);
    const body = (await bearer.json()) as { loaded: boolean; revision: string; loaded_at: string; policies: Array<{ id: string }>; slices: unknown[] };
    expect(body.loaded).toBe(true);
    expect(body.revision).toMatch(/^[0-9a-f]{16}$/);
    expect(Date.parse(body.loaded_at)).toBeGreaterThan(0);
    expect(body.policies.map((p) => p.id).sort()).toEqual(['admin-all', 'delete-requires-mfa', 'editor-write', 'owner-manage', 'public-read', 'viewer-read']);
    const basic = await get('/admin/policies', { authorization: `Basic ${Buffer.from(`ops:${KEY}`).toString('base64')}` });
    expect(basic.status).toBe(200);
  });

  it('reloads policies on POST /admin/policies/reload and keeps the last good set when the new one is broken', async () => {
    const rbac = join(policies, 'rbac.cedar');
    const original = readFileSync(rbac, 'utf8');
    const post = () => fetch(`${base}/admin/policies/reload`, { method: 'POST', headers: { authorization: `Bearer ${KEY}` } });
    try {
      writeFileSync(rbac, 'permit (principal, action, resource) when { 1 + };');
      const failed = await post();
      expect(failed.status).toBe(422);
      expect(await failed.json()).toMatchObject({ error: 'policy_reload_failed', detail: expect.stringMatching(/^rbac\.cedar:1:\d+ /) });
      expect(await metricValue(sidecar.metrics, 'auth_policy_reload_total', { result: 'failure' })).toBe(1);
      expect((await sidecar.client.check(httpCheckRequest('GET', '/public/x'))).httpResponse.case).toBe('okResponse');
      const status = (await (await get('/admin/policies', { authorization: `Bearer ${KEY}` })).json()) as { revision: string; last_failure: { error: string } };
      expect(status.last_failure.error).toMatch(/^rbac\.cedar:1:\d+ /);
      writeFileSync(rbac, original);
      const ok = await post();
      expect(ok.status).toBe(200);
      expect(await ok.json()).toMatchObject({ status: 'reloaded', policies: 6, generation: 2, revision: status.revision }); // same files, same revision
      // Both attempts are audit rows (newest first), the failure with its reason.
      const audit = (await (await get('/admin/audit?kind=policy.reload&limit=2', { authorization: `Bearer ${KEY}` })).json()) as { events: Array<{ outcome: string; reason: string | null; details: Record<string, unknown> }> };
      expect(audit.events.map((e) => e.outcome)).toEqual(['success', 'failure']);
      expect(audit.events[0]!.details).toMatchObject({ set: 'active', revision: status.revision, policies: 6 });
      expect(audit.events[1]).toMatchObject({ reason: 'policy_invalid', details: { set: 'active', error: expect.stringMatching(/^rbac\.cedar:1:\d+ /) } });
    } finally {
      writeFileSync(rbac, original);
    }
  });

  it('answers unknown paths with a JSON 404', async () => {
    const res = await get('/nope');
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: 'not_found' });
  });

  it('reports not ready (HTTP 503, gRPC NOT_SERVING) while draining', async () => {
    const other = await startSidecar({});
    try {
      other.server.drain();
      const res = await fetch(`http://127.0.0.1:${other.server.adminPort}/ready`);
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ status: 'not_ready', checks: { draining: true } });
      expect((await healthCheck(other.address)).status).toBe(2); // NOT_SERVING
      expect((await other.client.check(httpCheckRequest('GET', '/public/x'))).httpResponse.case).toBe('okResponse'); // still answers
    } finally {
      await other.close();
    }
  });

  it('refuses every /admin/* request when no key is configured', async () => {
    const other = await startSidecar({});
    try {
      const res = await fetch(`http://127.0.0.1:${other.server.adminPort}/admin/policies`, { headers: { authorization: 'Bearer ' } });
      expect(res.status).toBe(401);
    } finally {
      await other.close();
    }
  });
});
