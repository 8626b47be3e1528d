import { fromBinary } from '@bufbuild/protobuf';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCheckClient, httpCheckRequest } from '../../src/extauthz/client.js';
import { spawnServer } from '../helpers/cli_server.js';
import { tempDir } from '../helpers/temp_dir.js';
import { ExportTraceServiceRequestSchema } from '../../src/gen/opentelemetry/proto/collector/trace/v1/trace_service_pb.js';
import type { Span } from '../../src/gen/opentelemetry/proto/trace/v1/trace_pb.js';
import { spawnSync } from 'node:child_process';
import { generate } from 'otplib';
import { addUser, enrollTotp } from '../../src/issuer/users.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { startSidecar, type Sidecar } from '../helpers/sidecar.js';
import { createAppClient } from '../../src/appapi/client.js';
import { Decision } from '../../src/gen/portcullis/authz/v1/authorizer_pb.js';
import { makeKey, signToken, startJwksServer, type JwksServer, type SigningKey } from '../helpers/jwks_server.js';

/** A real OTLP/HTTP receiver: decodes each protobuf export body and keeps the spans. */
const spans: Span[] = [];
/** Each export request as it arrived: the exporting service, its span count, the trace id of each span. */
const exportsSeen: { service: string; count: number; traceIds: string[] }[] = [];
let receiver: Server;
let receiverUrl = '';
let sidecar: Sidecar;
let accessToken = '';
let idp: JwksServer;
let idpKey: SigningKey;
const PASSWORD = 'otlp-test-password-1';

const EXAMPLE_POLICIES = new URL('../../policies', import.meta.url).pathname;
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const attr = (s: Span, key: string) => {
  const v = s.attributes.find((a) => a.key === key)?.value?.value;
  return v?.value;
};

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      expect(req.url).toBe('/v1/traces');
      expect(req.headers['content-type']).toBe('application/x-protobuf');
      const body = fromBinary(ExportTraceServiceRequestSchema, Buffer.concat(chunks));
      const traceIds: string[] = [];
      let service = '';
      for (const rs of body.resourceSpans) {
        service = String(rs.resource?.attributes.find((a) => a.key === 'service.name')?.value?.value.value ?? '');
        for (const ss of rs.scopeSpans) for (const s of ss.spans) (spans.push(s), traceIds.push(hex(s.traceId)));
      }
      exportsSeen.push({ service, count: traceIds.length, traceIds });
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const endpoint = (receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/v1/traces`);
  idp = await startJwksServer();
  idpKey = await makeKey('idp-k1');
  idp.keys = [idpKey.publicJwk];
  sidecar = await startSidecar({ issuers: [{ issuer: idp.issuer, jwks_uri: idp.jwksUri, audiences: ['api'] }], observability: { tracing: { enabled: true, endpoint, sample_rate: 1, export_interval_ms: 50, export_batch_size: 2 } } });
  await addUser(sidecar.server.tokens!.ctx, { username: 'otlp-user', password: PASSWORD, roles: ['viewer'] });
  const res = await fetch(`http://127.0.0.1:${sidecar.server.httpPort}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'otlp-user', password: PASSWORD }) });
  accessToken = ((await res.json()) as { access_token: string }).access_token;
});
afterAll(async () => {
  await sidecar.close();
  await idp.close();
  await new Promise((resolve) => receiver.close(resolve));
});

async function tracedCheck(method: string, path: string, traceId: string, parentId: string, token = accessToken, atLeast = 3) {
  const res = await sidecar.client.check(httpCheckRequest(method, path, { authorization: `Bearer ${token}`, traceparent: `00-${traceId}-${parentId}-01` }));
  await expect.poll(() => spans.filter((s) => hex(s.traceId) === traceId && s.name === 'auth.authz.check').length, { timeout: 5000 }).toBe(1);
  await expect.poll(() => spans.filter((s) => hex(s.traceId) === traceId).length, { timeout: 5000 }).toBeGreaterThanOrEqual(atLeast);
  return { res, trace: spans.filter((s) => hex(s.traceId) === traceId) };
}

describe('OTLP trace export', () => {
  it("continues the caller's trace from the checked request's traceparent, with token and policy spans beneath the check", async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const parentId = '00f067aa0ba902b7';
    const { res, trace } = await tracedCheck('GET', '/documents/d1', traceId, parentId);
    expect(res.status?.code).toBe(0);
    const check = trace.find((s) => s.name === 'auth.authz.check')!;
    expect(hex(check.parentSpanId)).toBe(parentId);
    expect(attr(check, 'auth.authz.permitted')).toBe(true);
    expect(attr(check, 'auth.authz.resource_type')).toBe('Document');
    expect(attr(check, 'auth.authz.decision_source')).toBe('envoy');
    const verify = trace.find((s) => s.name === 'auth.token.verify')!;
    const evaluation = trace.find((s) => s.name === 'auth.authz.rbac_eval')!;
    expect(hex(verify.parentSpanId)).toBe(hex(check.spanId));
    expect(hex(evaluation.parentSpanId)).toBe(hex(check.spanId));
    expect(Number(attr(evaluation, 'auth.authz.policies_checked'))).toBeGreaterThan(0);
    // The resource side (entity store lookup of Document d1 and its attributes) is its own child.
    const resource = trace.find((s) => s.name === 'auth.authz.resource_check')!;
    expect(hex(resource.parentSpanId)).toBe(hex(check.spanId));
    expect(attr(resource, 'auth.authz.resource_type')).toBe('Document');
    expect(attr(resource, 'auth.authz.resource_found')).toBe(true);
  });

  it('exports in batches of at most export_batch_size spans', async () => {
    const traceId = 'ba7c0000000000000000000000000001';
    const { trace } = await tracedCheck('GET', '/documents/d1', traceId, '5555555555555555', accessToken, 4);
    expect(trace.length).toBeGreaterThanOrEqual(4);
    // Four spans or more, two to an export (the default would have sent them together).
    const carrying = exportsSeen.filter((e) => e.traceIds.includes(traceId));
    expect(carrying.length).toBeGreaterThanOrEqual(2);
    for (const e of carrying) expect(e.count).toBeLessThanOrEqual(2);
    expect(carrying.flatMap((e) => e.traceIds).filter((id) => id === traceId)).toHaveLength(trace.length);
  });

  it('sends a full batch at once, without waiting for the export interval', { timeout: 60_000 }, async () => {
    // Its own process (the SDK registers one tracer provider per process), with an interval that
    // outlasts the test: only full batches can reach the receiver.
    const dir = tempDir('pc-otlp-batch');
    const file = join(dir, 'config.yaml');
    writeFileSync(file, [
      'grpc: { address: "127.0.0.1:0" }', 'admin: { address: "127.0.0.1:0" }', 'http: { address: "127.0.0.1:0" }',
      `policies: { dir: ${EXAMPLE_POLICIES}, watch: false }`, `store: { sqlite_file: ${join(dir, 'portcullis.db')} }`, 'lifecycle: { drain_seconds: 0 }',
      `issuers: [{ issuer: "${idp.issuer}", jwks_uri: "${idp.jwksUri}", audiences: [api] }]`,
      `observability: { service_name: otlp-batch-test, tracing: { enabled: true, endpoint: "${receiverUrl}", sample_rate: 1, export_interval_ms: 60000, export_batch_size: 2 } }`, '',
    ].join('\n'));
    const server = await spawnServer(file, { PORTCULLIS_KEK: randomBytes(32).toString('base64url') });
    const client = createCheckClient(server.grpc);
    try {
      const traceId = 'ba7c0000000000000000000000000002';
      const token = await signToken({ sub: 'idp-user', roles: ['viewer'] }, { key: idpKey, issuer: idp.issuer, audience: 'api' });
      const res = await client.check(httpCheckRequest('GET', '/documents/d1', { authorization: `Bearer ${token}`, traceparent: `00-${traceId}-6666666666666666-01` }));
      expect(res.status?.code).toBe(0);
      // Five spans (check, token verify, JWKS keys, resource, evaluation): two full batches leave at once, the fifth waits for a third.
      await expect.poll(() => spans.filter((s) => hex(s.traceId) === traceId).length, { timeout: 10_000 }).toBeGreaterThanOrEqual(4);
      const sent = exportsSeen.filter((e) => e.service === 'otlp-batch-test');
      expect(sent.length).toBeGreaterThanOrEqual(2);
      expect(sent.map((e) => e.count)).toEqual(sent.map(() => 2));
    } finally {
      client.close();
      server.child.kill('SIGTERM');
      await server.exited;
    }
  });

  it('decides a request whose caller did not sample its trace without exporting any span of it', async () => {
    const unsampled = 'c0ffee00c0ffee00c0ffee00c0ffee01';
    const res = await sidecar.client.check(httpCheckRequest('GET', '/documents/d1', { authorization: `Bearer ${accessToken}`, traceparent: `00-${unsampled}-00f067aa0ba902b7-00` }));
    expect(res.httpResponse.case).toBe('okResponse');
    // A sampled check right after is exported in full, so the exporter has flushed past the first.
    await tracedCheck('GET', '/documents/d1', 'c0ffee00c0ffee00c0ffee00c0ffee02', '00f067aa0ba902b8');
    expect(spans.filter((s) => hex(s.traceId) === unsampled)).toEqual([]);
  });

  it("traces JWKS key resolution beneath token verification: cached keys, then a refetch for an unknown kid", async () => {
    const first = await tracedCheck('GET', '/documents/d1', 'c0ffee00000000000000000000000001', '3333333333333333', await signToken({ sub: 'idp-user', roles: ['viewer'] }, { key: idpKey, issuer: idp.issuer, audience: 'api' }), 5);
    expect(first.res.status?.code).toBe(0);
    const fetchSpan = (trace: Span[]) => trace.find((s) => s.name === 'auth.oauth.fetch_jwks')!;
    const verify = first.trace.find((s) => s.name === 'auth.token.verify')!;
    expect(hex(fetchSpan(first.trace).parentSpanId)).toBe(hex(verify.spanId));
    expect(attr(fetchSpan(first.trace), 'auth.oauth.jwks_cached')).toBe(true);
    expect(attr(fetchSpan(first.trace), 'auth.token.issuer')).toBe(idp.issuer);
    const rotated = await makeKey('idp-k2');
    idp.keys = [idpKey.publicJwk, rotated.publicJwk];
    const fetchesBefore = idp.jwksRequests;
    const second = await tracedCheck('GET', '/documents/d1', 'c0ffee00000000000000000000000002', '4444444444444444', await signToken({ sub: 'idp-user', roles: ['viewer'] }, { key: rotated, issuer: idp.issuer, audience: 'api' }), 5);
    expect(second.res.status?.code).toBe(0);
    expect(idp.jwksRequests).toBe(fetchesBefore + 1);
    expect(attr(fetchSpan(second.trace), 'auth.oauth.jwks_cached')).toBe(false);
  });

  it('traces the app API: Check and BatchCheck as auth.authz.check (source app) continuing the metadata traceparent', async () => {
    const app = createAppClient(sidecar.address);
    try {
      const principal = { kind: { case: 'token' as const, value: accessToken } };
      const traceId = 'dd000000000000000000000000000001';
      const res = await app.check({ principal, action: 'read', resource: { type: 'Document', id: 'd1' } }, { traceparent: `00-${traceId}-5555555555555555-01` });
      expect(res.decision).toBe(Decision.ALLOW);
      await expect.poll(() => spans.filter((s) => hex(s.traceId) === traceId).length, { timeout: 5000 }).toBeGreaterThanOrEqual(4);
      const trace = spans.filter((s) => hex(s.traceId) === traceId);
      const check = trace.find((s) => s.name === 'auth.authz.check')!;
      expect(hex(check.parentSpanId)).toBe('5555555555555555');
      expect(attr(check, 'auth.authz.decision_source')).toBe('app');
      expect(attr(check, 'auth.authz.permitted')).toBe(true);
      expect(attr(check, 'auth.authz.action')).toBe('read');
      expect(attr(check, 'auth.authz.resource_type')).toBe('Document');
      expect(attr(check, 'auth.authz.decision_id')).toBe(res.decisionId);
      expect(Number(attr(check, 'auth.authz.policies_checked'))).toBe(res.policiesChecked);
      for (const child of ['auth.token.verify', 'auth.authz.resource_check', 'auth.authz.rbac_eval']) {
        expect(hex(trace.find((s) => s.name === child)!.parentSpanId), child).toBe(hex(check.spanId));
      }

      const batchTrace = 'dd000000000000000000000000000002';
      const batch = await app.batchCheck({ principal, items: [{ action: 'read', resource: { type: 'Document', id: 'd1' } }, { action: 'delete', resource: { type: 'Document', id: 'd1' } }] }, { traceparent: `00-${batchTrace}-6666666666666666-01` });
      expect(batch.results.map((r) => r.decision)).toEqual([Decision.ALLOW, Decision.DENY]);
      await expect.poll(() => spans.filter((s) => hex(s.traceId) === batchTrace).length, { timeout: 5000 }).toBeGreaterThanOrEqual(6);
      const batchSpans = spans.filter((s) => hex(s.traceId) === batchTrace);
      const batchCheck = batchSpans.find((s) => s.name === 'auth.authz.check')!;
      expect(attr(batchCheck, 'auth.authz.batch_size')).toBe(2n);
      expect(attr(batchCheck, 'auth.authz.permitted')).toBe(false);
      expect(batchCheck.events.map((e) => e.name)).toEqual(['authorization_denied']);
      const ids = (attr(batchCheck, 'auth.authz.decision_ids') as { values: Array<{ value: { value: unknown } }> }).values.map((v) => v.value.value);
      expect(ids).toEqual(batch.results.map((r) => r.decisionId));
      expect(batchSpans.filter((s) => s.name === 'auth.authz.rbac_eval' && hex(s.parentSpanId) === hex(batchCheck.spanId))).toHaveLength(2);
    } finally {
      app.close();
    }
  });

  it('marks a denial with an authorization_denied event', async () => {
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const { res, trace } = await tracedCheck('DELETE', '/documents/d1', traceId, 'b7ad6b7169203331');
    expect(res.httpResponse.case).toBe('deniedResponse');
    const check = trace.find((s) => s.name === 'auth.authz.check')!;
    expect(attr(check, 'auth.authz.permitted')).toBe(false);
    expect(check.events.map((e) => e.name)).toEqual(['authorization_denied']);
  });

  it('writes the trace and span ids into the decision log lines, and never a token or password into spans', async () => {
    const traceId = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
    await tracedCheck('GET', '/documents', traceId, '1111111111111111');
    const check = spans.find((s) => hex(s.traceId) === traceId && s.name === 'auth.authz.check')!;
    const line = sidecar.logs.find((l) => l.trace_id === traceId);
    expect(line).toBeDefined();
    expect(line!.span_id).toBe(hex(check.spanId));
    // The request context travels in the same context as the span: the line carries both.
    expect(line!.decision_id).toBe(attr(check, 'auth.authz.decision_id'));
    const exported = JSON.stringify(spans.map((s) => [s.name, s.attributes, s.events]), (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v));
    for (const secret of [accessToken, PASSWORD, accessToken.split('.')[2]!]) expect(exported).not.toContain(secret);
    expect(exported).not.toContain('otlp-user');
  });
});

const promtool = spawnSync('promtool', ['--version']).status === 0;

describe('telemetry hygiene across a full flow', () => {
  it('never lets a password, TOTP code, token or session id reach a log line, span or metric', async () => {
    const ctx = sidecar.server.tokens!.ctx;
    await addUser(ctx, { username: 'hygiene-user', password: 'hygiene-password-42', roles: ['viewer'] });
    const { secret, backupCodes } = await enrollTotp(ctx, 'hygiene-user', 'Portcullis');
    const post = async (path: string, body: unknown) => (await fetch(`http://127.0.0.1:${sidecar.server.httpPort}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })).json() as Promise<Record<string, string>>;
    const first = await post('/login', { username: 'hygiene-user', password: 'hygiene-password-42' });
    const code = await generate({ secret });
    const tokens = await post('/login/mfa', { mfa_token: first.mfa_token, code });
    await post('/login', { username: 'hygiene-user', password: 'wrong-hygiene-password' });
    const refreshed = (await (
      await fetch(`http://127.0.0.1:${sidecar.server.httpPort}/oauth2/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `grant_type=refresh_token&client_id=portcullis-login&refresh_token=${tokens.refresh_token}` })
    ).json()) as Record<string, string>;
    const traceId = '5bf92f3577b34da6a3ce929d0e0e4799';
    await tracedCheck('GET', '/documents/d1', traceId, '2222222222222222');
    const metrics = await (await fetch(`http://127.0.0.1:${sidecar.server.adminPort}/metrics`)).text();
    const exported = JSON.stringify(spans.map((x) => [x.name, x.attributes, x.events, x.status]), (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v));
    const logs = JSON.stringify(sidecar.logs);
    const secrets = ['hygiene-password-42', 'wrong-hygiene-password', code, secret, backupCodes[0]!, first.mfa_token!, tokens.access_token!, tokens.refresh_token!, refreshed.refresh_token!, refreshed.access_token!, 'hygiene-user'];
    for (const s of secrets) {
      expect(logs, 'logs').not.toContain(s);
      expect(exported, 'spans').not.toContain(s);
      expect(metrics, 'metrics').not.toContain(s);
    }
    expect(spans.some((x) => x.name === 'auth.login')).toBe(true);
  });

  it.skipIf(!promtool)('serves /metrics that the Prometheus text parser accepts, with every catalog family', async () => {
    const text = await (await fetch(`http://127.0.0.1:${sidecar.server.adminPort}/metrics`)).text();
    const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    const problems = `${r.stdout}${r.stderr}`.split('\n').filter(Boolean);
    expect(problems.join('\n')).not.toMatch(/pars/i);
    // prom-client's default Node gauges carry a `_total` suffix promtool lints; ours pass the linter.
    expect(problems.filter((l) => !l.startsWith('nodejs_'))).toEqual([]);
    for (const m of await createMetrics().registry.getMetricsAsJSON()) expect(text).toContain(`# TYPE ${m.name} `);
  });
});
