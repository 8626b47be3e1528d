import { InMemorySpanExporter, NodeTracerProvider, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-node';
import { generate } from 'otplib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { addUser, enrollTotp } from '../../src/issuer/users.js';
import { startSidecar, type Sidecar } from '../helpers/sidecar.js';

// A real SDK with an in-memory exporter, registered before the server starts (this file runs in its own process).
const exporter = new InMemorySpanExporter();
const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
provider.register();

let sidecar: Sidecar;
let base = '';
let totpSecret = '';
const PASSWORD = 'tracing-password-1';

beforeAll(async () => {
  sidecar = await startSidecar({});
  base = `http://127.0.0.1:${sidecar.server.httpPort}`;
  const ctx = sidecar.server.tokens!.ctx;
  await addUser(ctx, { username: 'trace-user', password: PASSWORD, roles: ['viewer'] });
  totpSecret = (await enrollTotp(ctx, 'trace-user', 'Portcullis')).secret;
});
afterAll(async () => {
  await sidecar.close();
  await provider.shutdown();
});
beforeEach(() => exporter.reset());

const post = (path: string, body: unknown) => fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const byName = (spans: ReadableSpan[], name: string) => spans.filter((s) => s.name === name);
const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;

describe('login spans', () => {
  it('builds auth.login → auth.verify_credentials → auth.verify_password, then auth.login → auth.mfa.verify and auth.token.issue', async () => {
    const first = (await (await post('/login', { username: 'trace-user', password: PASSWORD })).json()) as { mfa_token: string };
    const second = await post('/login/mfa', { mfa_token: first.mfa_token, code: await generate({ secret: totpSecret }) });
    expect(second.status).toBe(200);
    const spans = exporter.getFinishedSpans();
    const [passwordLogin, mfaLogin] = byName(spans, 'auth.login');
    expect(passwordLogin!.attributes).toMatchObject({ 'auth.client_type': 'api', 'auth.step': 'password' });
    const credentials = byName(spans, 'auth.verify_credentials')[0]!;
    expect(parentOf(credentials)).toBe(passwordLogin!.spanContext().spanId);
    expect(parentOf(byName(spans, 'auth.verify_password')[0]!)).toBe(credentials.spanContext().spanId);
    expect(mfaLogin!.attributes).toMatchObject({ 'auth.step': 'mfa' });
    const mfa = byName(spans, 'auth.mfa.verify')[0]!;
    expect(parentOf(mfa)).toBe(mfaLogin!.spanContext().spanId);
    expect(mfa.attributes['auth.mfa.method']).toBe('totp');
    const issue = byName(spans, 'auth.token.issue')[0]!;
    expect(parentOf(issue)).toBe(mfaLogin!.spanContext().spanId);
    expect(issue.attributes).toMatchObject({ 'oauth.grant_type': 'login', 'oauth.client_id': 'portcullis-login' });
  });

  it('marks a failed login with its internal reason and never records the username, password or tokens', async () => {
    await post('/login', { username: 'trace-user', password: 'wrong-password-1' });
    await post('/login', { username: 'nobody-here', password: 'wrong-password-1' });
    const logins = byName(exporter.getFinishedSpans(), 'auth.verify_credentials');
    expect(logins.map((s) => s.attributes['auth.failure_reason'])).toEqual(['invalid_password', 'user_not_found']);
    expect(logins.every((s) => s.status.code === 2)).toBe(true);
    const everything = JSON.stringify(exporter.getFinishedSpans().map((s) => ({ attributes: s.attributes, events: s.events, status: s.status })));
    for (const secret of ['trace-user', 'nobody-here', 'wrong-password-1', PASSWORD]) expect(everything).not.toContain(secret);
  });

  it('wraps the token endpoint grant in auth.token.issue with the grant type', async () => {
    const res = await fetch(`${base}/oauth2/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=refresh_token&client_id=portcullis-login&refresh_token=unknown' });
    expect(res.status).toBe(400);
    const issue = byName(exporter.getFinishedSpans(), 'auth.token.issue')[0]!;
    expect(issue.attributes).toMatchObject({ 'oauth.grant_type': 'refresh_token', 'oauth.client_id': 'portcullis-login', 'auth.failure_reason': 'unknown_refresh_token' });
  });
});
