import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAppClient } from '../../src/appapi/client.js';
import { httpCheckRequest } from '../../src/extauthz/client.js';
import { isPortcullisError } from '../../src/lib/errors.js';
import { loadPolicyBundle } from '../../src/policy/index.js';
import { makeKey, signToken, startJwksServer, type JwksServer, type SigningKey } from '../helpers/jwks_server.js';
import { moved, seen, seriesOf } from '../helpers/corpus.js';
import { EXAMPLE_POLICIES, startSidecar, type Sidecar } from '../helpers/sidecar.js';
import { tempDir } from '../helpers/temp_dir.js';

/**
 * Every explicit input limit, exceeded once over the real server: the precise error the caller
 * gets, the metric reason it is counted under, and a normal request answered right after.
 */
const LIMITS = { max_header_count: 12, max_header_bytes: 2048, max_token_bytes: 1024, max_entities: 20 };
let idp: JwksServer;
let key: SigningKey;
let sidecar: Sidecar;
let app: ReturnType<typeof createAppClient>;
let policyDir: string;

beforeAll(async () => {
  idp = await startJwksServer();
  key = await makeKey('k1');
  idp.keys = [key.publicJwk];
  policyDir = tempDir('pc-limits');
  cpSync(EXAMPLE_POLICIES, policyDir, { recursive: true });
  sidecar = await startSidecar({
    issuers: [{ issuer: idp.issuer, jwks_uri: idp.jwksUri, audiences: ['api'] }],
    limits: LIMITS,
    request_body: { max_bytes: 256 },
    grpc: { max_receive_message_bytes: 64 * 1024 },
    policies: { dir: policyDir, watch: false, max_file_bytes: 16 * 1024 },
    http_authz: { address: '127.0.0.1:0' },
  });
  app = createAppClient(sidecar.address);
});

afterAll(async () => {
  app?.close();
  await sidecar?.close();
  await idp?.close();
});

const token = (claims: Record<string, unknown> = {}) => signToken({ sub: 'alice', roles: ['viewer'], ...claims }, { key, issuer: idp.issuer, audience: 'api' });
const headers = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`x-h${i}`, 'v']));
const limitSeries = () => seriesOf(sidecar.metrics, 'auth_limit_exceeded_total');
const grpcError = (p: Promise<unknown>) => p.then(() => { throw new Error('expected a gRPC error'); }, (e: unknown) => e as ServiceError);

async function stillServes(): Promise<void> {
  const ok = await sidecar.client.check(httpCheckRequest('GET', '/documents/d1', { authorization: `Bearer ${await token()}` }));
  expect(seen(ok).status).toBe(200);
}

describe('explicit limits on the Envoy Check path (400 naming the limit, counted by limit)', () => {
  const cases: Array<[string, () => Promise<ReturnType<typeof httpCheckRequest>>, number, string, string, RegExp]> = [
    ['header count', async () => httpCheckRequest('GET', '/public/x', headers(LIMITS.max_header_count + 1)), 400, 'limits.max_header_count', 'header_count', /^request has 13 headers, more than 12 \(limits\.max_header_count\)$/],
    ['total header size', async () => httpCheckRequest('GET', '/public/x', { 'x-big': 'a'.repeat(LIMITS.max_header_bytes) }), 400, 'limits.max_header_bytes', 'header_bytes', /^request headers hold \d+ bytes, more than 2048 \(limits\.max_header_bytes\)$/],
    [
      'inspected body size',
      async () => {
        const r = httpCheckRequest('POST', '/documents', { 'content-type': 'application/json', authorization: `Bearer ${await token()}` });
        r.attributes!.request!.http!.body = JSON.stringify({ pad: 'x'.repeat(300) });
        return r;
      },
      400,
      'request_body.max_bytes',
      'request_body',
      /^request body of 310 bytes exceeds the 256-byte limit \(request_body\.max_bytes\)$/,
    ],
    ['entities a request builds (token roles)', async () => httpCheckRequest('GET', '/documents/d1', { authorization: `Bearer ${await token({ roles: Array.from({ length: 30 }, (_, i) => `r${i}`) })}` }), 400, 'limits.max_entities', 'entities', /^the request builds 32 entities, more than 20 \(limits\.max_entities\)$/],
  ];

  it.each(cases)('%s', async (_name, build, httpStatus, key, label, description) => {
    const before = await limitSeries();
    const res = seen(await sidecar.client.check(await build()));
    expect(res.status).toBe(httpStatus);
    expect(res.grpcCode).toBe(status.INVALID_ARGUMENT);
    expect(res.wwwAuthenticate).toBeUndefined();
    expect(res.body).toMatchObject({ error: 'bad_request', limit: key });
    expect(res.body!.error_description).toMatch(description);
    expect(moved(before, await limitSeries())).toEqual({ [`limit=${label}`]: 1 });
    await stillServes();
  });

  it('refuses a token over limits.max_token_bytes as invalid_token before parsing it, counted as token', async () => {
    const before = await limitSeries();
    const rejected = await seriesOf(sidecar.metrics, 'auth_token_rejected_total');
    const verified = await seriesOf(sidecar.metrics, 'auth_token_verify_latency_seconds');
    const res = seen(await sidecar.client.check(httpCheckRequest('GET', '/documents/d1', { authorization: `Bearer ${'a'.repeat(LIMITS.max_token_bytes + 1)}` })));
    expect(res.status).toBe(401);
    expect(res.wwwAuthenticate).toBe('Bearer realm="portcullis", error="invalid_token", error_description="token too large"');
    expect(moved(before, await limitSeries())).toEqual({ 'limit=token': 1 });
    expect(moved(rejected, await seriesOf(sidecar.metrics, 'auth_token_rejected_total'))).toEqual({ 'reason=ERR_TOKEN_TOO_LARGE': 1 });
    expect(moved(verified, await seriesOf(sidecar.metrics, 'auth_token_verify_latency_seconds'))).toEqual({});
    await stillServes();
  });

  it('answers a message over grpc.max_receive_message_bytes with RESOURCE_EXHAUSTED', async () => {
    const err = await grpcError(sidecar.client.check(httpCheckRequest('GET', '/public/x', { 'x-big': 'a'.repeat(70 * 1024) })));
    expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(err.details).toMatch(/larger than max \(\d+ vs 65536\)/);
    await stillServes();
  });
});

describe('explicit limits on the HTTP ext_authz transport', () => {
  const httpCheck = (path: string, init: RequestInit) => fetch(`http://127.0.0.1:${sidecar.server.httpAuthzPort}${path}`, init);

  it('answers a body over request_body.max_bytes with a 400 naming the limit, counted', async () => {
    const before = await limitSeries();
    const res = await httpCheck('/documents', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ pad: 'x'.repeat(600) }) });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: 'bad_request', error_description: 'request body exceeds 256 bytes', limit: 'request_body.max_bytes' });
    expect(moved(before, await limitSeries())).toEqual({ 'limit=request_body': 1 });
  });

  it('answers too many headers with a 400 naming limits.max_header_count, counted', async () => {
    const before = await limitSeries();
    const res = await httpCheck('/public/x', { headers: headers(LIMITS.max_header_count) });
    expect(res.status).toBe(400);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ error: 'bad_request', limit: 'limits.max_header_count' });
    expect(String(body.error_description)).toMatch(/^request has \d+ headers, more than 12 \(limits\.max_header_count\)$/);
    expect(moved(before, await limitSeries())).toEqual({ 'limit=header_count': 1 });
    expect((await httpCheck('/public/x', {})).status).toBe(200);
  });
});

describe('explicit limits on the app API (INVALID_ARGUMENT naming the limit)', () => {
  const entities = (n: number) => Array.from({ length: n }, (_, i) => ({ type: 'Document', id: `e${i}`, attributes: { owner: 'x' } }));

  it('refuses a BatchCheck that supplies more entities than limits.max_entities', async () => {
    const before = await limitSeries();
    const err = await grpcError(app.batchCheck({ principal: { kind: { case: 'token', value: await token() } }, items: [{ action: 'read', resource: { type: 'Document', id: 'd1' } }], entities: entities(LIMITS.max_entities + 1) }));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toBe('the call supplies 21 entities, more than 20 (limits.max_entities)');
    expect(moved(before, await limitSeries())).toEqual({ 'limit=entities': 1 });
  });

  it('counts resources with attributes among the supplied entities', async () => {
    const items = Array.from({ length: LIMITS.max_entities + 1 }, (_, i) => ({ action: 'read', resource: { type: 'Document', id: `d${i}`, attributes: { owner: 'x' } } }));
    const err = await grpcError(app.batchCheck({ principal: { kind: { case: 'token', value: await token() } }, items }));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toContain('(limits.max_entities)');
  });

  it('refuses a decision whose built entity set (token roles) exceeds the limit', async () => {
    const many = await token({ roles: Array.from({ length: 30 }, (_, i) => `r${i}`) });
    const err = await grpcError(app.check({ principal: { kind: { case: 'token', value: many } }, action: 'read', resource: { type: 'Document', id: 'd1' } }));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toBe('the request builds 32 entities, more than 20 (limits.max_entities)');
  });

  it('accepts a call at the limit (17 supplied + the user, its viewer role and Document d1)', async () => {
    const res = await app.batchCheck({ principal: { kind: { case: 'token', value: await token() } }, items: [{ action: 'read', resource: { type: 'Document', id: 'd1' } }], entities: entities(LIMITS.max_entities - 3) });
    expect(res.results).toHaveLength(1);
  });

  it('refuses a token over the size limit with UNAUTHENTICATED', async () => {
    const err = await grpcError(app.check({ principal: { kind: { case: 'token', value: 'a'.repeat(LIMITS.max_token_bytes + 1) } }, action: 'read', resource: { type: 'Document', id: 'd1' } }));
    expect(err.code).toBe(status.UNAUTHENTICATED);
    expect(err.details).toBe('invalid token: token too large');
  });
});

describe('policy file size (policies.max_file_bytes)', () => {
  it('rejects a reload with a file over the limit, naming the file and the limit; the last good set keeps serving', async () => {
    const before = await limitSeries();
    const big = join(policyDir, 'big.cedar');
    writeFileSync(big, `// ${'x'.repeat(17 * 1024)}\n`);
    const result = sidecar.server.reloadPolicies();
    expect(result).toEqual({ ok: false, error: `${big}: ${17 * 1024 + 4} bytes, more than 16384 (policies.max_file_bytes)` });
    expect(moved(before, await limitSeries())).toEqual({ 'limit=policy_file': 1 });
    await stillServes();
  });

  it('reports an unreadable policy file (a folder named *.cedar) as a load error, not a crash', () => {
    const dir = tempDir('pc-limits-dir');
    cpSync(EXAMPLE_POLICIES, dir, { recursive: true });
    mkdirSync(join(dir, 'nested.cedar'));
    let thrown: unknown;
    try {
      loadPolicyBundle(dir);
    } catch (err) {
      thrown = err;
    }
    expect(isPortcullisError(thrown, 'ERR_POLICY_LOAD')).toBe(true);
    expect((thrown as Error).message).toBe(`cannot read policy file ${join(dir, 'nested.cedar')}: not a regular file`);
  });
});
