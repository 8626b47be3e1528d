import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAppClient } from '../../src/appapi/client.js';
import { httpCheckRequest } from '../../src/extauthz/client.js';
import { addUser } from '../../src/issuer/users.js';
import { startSidecar, type Sidecar } from '../helpers/sidecar.js';
import { tempDir } from '../helpers/temp_dir.js';

let sidecar: Sidecar;
let file: string;
let token = '';
let userId = '';
const PASSWORD = 'decision-log-password-1';

beforeAll(async () => {
  file = join(tempDir('pc-dlog-int'), 'decisions.jsonl');
  sidecar = await startSidecar({ observability: { decision_log: { enabled: true, destination: file } } });
  userId = (await addUser(sidecar.server.tokens!.ctx, { username: 'dlog-user', password: PASSWORD, roles: ['viewer'] })).id;
  const res = await fetch(`http://127.0.0.1:${sidecar.server.httpPort}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'dlog-user', password: PASSWORD }) });
  token = ((await res.json()) as { access_token: string }).access_token;
});
let closed = false;
afterAll(async () => {
  if (!closed) await sidecar?.close();
});

describe('decision log stream', () => {
  it('writes a record for Envoy and app decisions, with the subject as the audit log\'s keyed hash and never a credential', async () => {
    const allowed = await sidecar.client.check(httpCheckRequest('GET', '/documents/d1?session=abc123', { authorization: `Bearer ${token}` }));
    expect(allowed.status?.code).toBe(0);
    const denied = await sidecar.client.check(httpCheckRequest('DELETE', '/documents/d1', { authorization: `Bearer ${token}` }));
    expect(denied.httpResponse.case).toBe('deniedResponse');
    const app = createAppClient(sidecar.address);
    const appAnswer = await app.check({ principal: { kind: { case: 'token', value: token } }, action: 'read', resource: { type: 'Document', id: 'd2' } });
    app.close();
    closed = true;
    await sidecar.close(); // flushes the file
    const text = readFileSync(file, 'utf8');
    const records = text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records).toHaveLength(3);
    const ref = sidecar.server.tokens!.ctx.audit.userRef(userId);
    expect(records[0]).toMatchObject({ source: 'envoy', request_id: 'req-1', request: { method: 'GET', path: '/documents/d1' }, subject: ref, action: 'read', resource_type: 'Document', resource_id: 'd1', allow: true, status: 200 });
    expect(records[0]!.determining_policies).toEqual(['viewer-read']);
    expect(typeof records[0]!.latency_ms).toBe('number');
    expect(records[0]!.policy_revision).toBe(sidecar.server.policies.current()?.bundle.revision);
    expect(records[1]).toMatchObject({ source: 'envoy', allow: false, status: 403, reason: 'forbidden', code: 'ERR_POLICY_DENIED', subject: ref });
    expect(records[2]).toMatchObject({ source: 'app', decision_id: appAnswer.decisionId, resource_id: 'd2', allow: true, subject: ref });
    for (const secret of [token, token.split('.')[2]!, PASSWORD, 'abc123', userId, 'dlog-user']) expect(text).not.toContain(secret);
  });
});
