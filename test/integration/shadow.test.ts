import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { httpCheckRequest } from '../../src/extauthz/client.js';
import { makeKey, signToken, startJwksServer } from '../helpers/jwks_server.js';
import { EXAMPLE_POLICIES, metricValue, startSidecar } from '../helpers/sidecar.js';
import { tempDir } from '../helpers/temp_dir.js';

describe('shadow policy set', () => {
  it('evaluates a candidate set on live traffic, counts and logs disagreements, and never changes the answer', async () => {
    const candidate = join(tempDir('pc-shadow'), 'policies');
    cpSync(EXAMPLE_POLICIES, candidate, { recursive: true });
    // The candidate drops list from viewers: reads of documents still agree, listing disagrees.
    const rbac = join(candidate, 'rbac.cedar');
    writeFileSync(rbac, readFileSync(rbac, 'utf8').replace('action in [Action::"read", Action::"list"]', 'action in [Action::"read"]'));
    const idp = await startJwksServer();
    const key = await makeKey('k1');
    idp.keys = [key.publicJwk];
    const sidecar = await startSidecar({ policies: { shadow_dir: candidate }, issuers: [{ issuer: idp.issuer, jwks_uri: idp.jwksUri }] });
    try {
      const auth = { authorization: `Bearer ${await signToken({ sub: 'vic', roles: ['viewer'] }, { key, issuer: idp.issuer })}` };
      const read = await sidecar.client.check(httpCheckRequest('GET', '/documents/d2', auth));
      expect(read.httpResponse.case).toBe('okResponse');
      expect(await metricValue(sidecar.metrics, 'auth_policy_shadow_disagreements_total')).toBe(0);

      const list = await sidecar.client.check(httpCheckRequest('GET', '/documents', auth));
      expect(list.httpResponse.case).toBe('okResponse'); // the active set still answers
      expect(await metricValue(sidecar.metrics, 'auth_policy_shadow_disagreements_total', { active: 'allow', shadow: 'deny' })).toBe(1);
      const line = sidecar.logs.find((l) => l.msg === 'shadow policy set disagrees');
      expect(line).toMatchObject({ action: 'list', resource_type: 'Collection', active: { decision: 'allow', determining_policies: ['viewer-read'] }, shadow: { decision: 'deny', determining_policies: [] } });
      expect(await metricValue(sidecar.metrics, 'auth_policy_reload_total', { result: 'success', set: 'shadow' })).toBe(1);
    } finally {
      await sidecar.close();
      await idp.close();
    }
  });

  it('starts with a broken shadow set, reports it, and keeps answering from the active set', async () => {
    const candidate = tempDir('pc-shadow-broken', { 'routes.yaml': 'routes: [', 'p.cedar': 'permit(' });
    const sidecar = await startSidecar({ policies: { shadow_dir: candidate } });
    try {
      expect(sidecar.logs.some((l) => l.msg === 'policy load failed' && l.set === 'shadow')).toBe(true);
      expect((await sidecar.client.check(httpCheckRequest('GET', '/public/x'))).httpResponse.case).toBe('okResponse');
      expect(await metricValue(sidecar.metrics, 'auth_policy_shadow_disagreements_total')).toBe(0);
    } finally {
      await sidecar.close();
    }
  });
});
