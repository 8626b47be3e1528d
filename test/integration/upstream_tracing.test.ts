import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Span } from '../../src/gen/opentelemetry/proto/trace/v1/trace_pb.js';
import { addClient } from '../../src/issuer/clients.js';
import { startOtlpHttpReceiver, type OtlpReceiver } from '../helpers/otlp_receiver.js';
import { startSidecar, type Sidecar } from '../helpers/sidecar.js';
import { startUpstreamIdp, type UpstreamIdp } from '../helpers/upstream_idp.js';
import { loginThroughProvider, RP_REDIRECT } from '../helpers/upstream_login.js';

/**
 * A login through an external provider with tracing on: the provider's ID token is verified
 * through the shared JWKS key source, whose key resolution is the `auth.oauth.fetch_jwks` span
 * (`auth.oauth.jwks_cached` false when it had to fetch, true when held keys answered) inside the
 * `auth.login` span of the callback (`auth.step` upstream).
 */

const IDP_SECRET = `idp-secret-${randomBytes(8).toString('hex')}`;
let idp: UpstreamIdp;
let receiver: OtlpReceiver;
let sidecar: Sidecar;

const spans = (): Span[] => receiver.spans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans));
const attr = (s: Span, key: string) => s.attributes.find((a) => a.key === key)?.value?.value.value;
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

beforeAll(async () => {
  idp = await startUpstreamIdp();
  receiver = await startOtlpHttpReceiver();
  sidecar = await startSidecar({
    observability: { tracing: { enabled: true, endpoint: `${receiver.url}/v1/traces`, sample_rate: 1, export_interval_ms: 50 } },
    upstream_providers: [{ id: 'corp', name: 'Corp SSO', issuer: idp.issuer, client_id: 'portcullis', client_secret: IDP_SECRET, auto_provision: true, jwks: { request_budget_ms: 5000 } }],
  });
  await addClient(sidecar.server.tokens!.ctx, { clientId: 'portal', type: 'confidential', grantTypes: ['authorization_code'], redirectUris: [RP_REDIRECT], scopes: ['openid', 'profile', 'email'], roles: [], firstParty: true });
  await idp.configure([{ client_id: 'portcullis', client_secret: IDP_SECRET, grant_types: ['authorization_code'], redirect_uris: [`${sidecar.server.issuer}/oauth2/upstream/corp/callback`], token_endpoint_auth_method: 'client_secret_basic' }]);
}, 60_000);

afterAll(async () => {
  await sidecar?.close();
  await receiver?.close();
  await idp?.close();
});

describe('tracing of a login through an external provider', () => {
  it('records the ID token key resolution as auth.oauth.fetch_jwks inside the auth.login callback span', async () => {
    const fetchSpans = () => spans().filter((s) => s.name === 'auth.oauth.fetch_jwks');
    for (const [n, sub] of [[1, 'first-sub'], [2, 'second-sub']] as const) {
      idp.accounts.set(sub, { email: `${sub}@corp.example`, email_verified: true });
      const run = await loginThroughProvider(idp, sidecar, sub);
      expect(run.callback.status).toBe(303);
      expect(new URL(run.callback.headers.get('location')!).href.startsWith(RP_REDIRECT)).toBe(true);
      await expect.poll(() => fetchSpans().length, { timeout: 5000 }).toBe(n);
    }
    const [first, second] = fetchSpans();
    // The first login's key resolution had to fetch the provider's JWKS; the second found it held.
    expect(attr(first!, 'auth.oauth.jwks_cached')).toBe(false);
    expect(attr(second!, 'auth.oauth.jwks_cached')).toBe(true);
    for (const s of [first!, second!]) {
      const ancestors: Span[] = [];
      for (let at: Span | undefined = s; at; at = spans().find((p) => hex(p.spanId) === hex(at!.parentSpanId) && hex(p.traceId) === hex(at!.traceId))) ancestors.push(at);
      const login = ancestors.find((a) => a.name === 'auth.login');
      expect(login, `ancestors: ${ancestors.map((a) => a.name).join(' < ')}`).toBeDefined();
      expect(attr(login!, 'auth.step')).toBe('upstream');
    }
    expect(receiver.problems).toEqual([]);
  });
});
