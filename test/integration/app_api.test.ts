import { toJson, type JsonObject } from '@bufbuild/protobuf';
import { ValueSchema } from '@bufbuild/protobuf/wkt';
import { status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAppClient } from '../../src/appapi/client.js';
import { Decision, PlanKind } from '../../src/gen/portcullis/authz/v1/authorizer_pb.js';
import { makeKey, signToken, startJwksServer, type JwksServer, type SigningKey } from '../helpers/jwks_server.js';
import { healthCheck, metricValue, startSidecar, type Sidecar } from '../helpers/sidecar.js';

let idp: JwksServer;
let key: SigningKey;
let sidecar: Sidecar;
let app: ReturnType<typeof createAppClient>;

beforeAll(async () => {
  idp = await startJwksServer();
  key = await makeKey('k1');
  idp.keys = [key.publicJwk];
  sidecar = await startSidecar({ issuers: [{ issuer: idp.issuer, jwks_uri: idp.jwksUri, audiences: ['api'] }] });
  app = createAppClient(sidecar.address);
});

afterAll(async () => {
  app?.close();
  await sidecar?.close();
  await idp?.close();
});

const token = (sub: string, roles: string[], extra: Record<string, unknown> = {}) => signToken({ sub, roles, ...extra }, { key, issuer: idp.issuer, audience: 'api' });
const doc = (id: string, attributes?: JsonObject) => ({ type: 'Document', id, ...(attributes ? { attributes } : {}) });
const fail = (p: Promise<unknown>) => p.then(() => { throw new Error('expected a gRPC error'); }, (e: unknown) => e as ServiceError);

describe('portcullis.authz.v1.Authorizer/Check', () => {
  it('decides for a token principal with the same policies as the Envoy path', async () => {
    const res = await app.check({ principal: { kind: { case: 'token', value: await token('vic', ['viewer']) } }, action: 'read', resource: doc('d2') });
    expect(res).toMatchObject({ decision: Decision.ALLOW, determiningPolicies: ['viewer-read'], policiesChecked: 3, errors: [] });
    expect(res.decisionId).toMatch(/^[0-9a-f-]{36}$/);
    const denied = await app.check({ principal: { kind: { case: 'token', value: await token('vic', ['viewer']) } }, action: 'update', resource: doc('d2') });
    expect(denied.decision).toBe(Decision.DENY);
  });

  it('takes an explicit principal entity whose parents resolve through the stored role hierarchy', async () => {
    const res = await app.check({ principal: { kind: { case: 'entity', value: { type: 'User', id: 'bob', parents: [{ type: 'Role', id: 'admin' }] } } }, action: 'list', resource: { type: 'Collection', id: 'documents' } });
    expect(res.decision).toBe(Decision.ALLOW);
    expect(res.determiningPolicies.sort()).toEqual(['admin-all', 'viewer-read']); // admin inherits viewer via entities.json
  });

  it('uses resource attributes and context given by the application', async () => {
    const owner = { kind: { case: 'entity' as const, value: { type: 'User', id: 'carol' } } };
    const owned = doc('x9', { owner: { __entity: { type: 'User', id: 'carol' } } });
    expect((await app.check({ principal: owner, action: 'update', resource: owned })).determiningPolicies).toEqual(['owner-manage']);
    const noMfa = await app.check({ principal: owner, action: 'delete', resource: owned, context: { mfa: false } });
    expect(noMfa).toMatchObject({ decision: Decision.DENY, determiningPolicies: ['delete-requires-mfa'] });
    const withMfa = await app.check({ principal: owner, action: 'delete', resource: owned, context: { mfa: true } });
    expect(withMfa.decision).toBe(Decision.ALLOW);
    expect((await app.check({ principal: owner, action: 'update', resource: doc('x9') })).decision).toBe(Decision.DENY); // without the owner attribute
  });

  it('answers an invalid token with UNAUTHENTICATED and a short reason', async () => {
    const err = await fail(app.check({ principal: { kind: { case: 'token', value: 'garbage' } }, action: 'read', resource: doc('d1') }));
    expect(err.code).toBe(status.UNAUTHENTICATED);
    expect(err.details).toBe('invalid token: malformed token');
  });

  it.each([
    [{ action: 'read', resource: doc('d1') }, 'principal: give a token or an entity'],
    [{ principal: { kind: { case: 'entity' as const, value: { type: 'User', id: 'a' } } }, resource: doc('d1') }, 'action: required'],
    [{ principal: { kind: { case: 'entity' as const, value: { type: 'User', id: 'a' } } }, action: 'read' }, 'resource: required'],
    [{ principal: { kind: { case: 'entity' as const, value: { type: 'User', id: '' } } }, action: 'read', resource: doc('d1') }, 'principal.entity.id: required'],
    [{ principal: { kind: { case: 'entity' as const, value: { type: 'User', id: 'a' } } }, action: 'fly', resource: doc('d1') }, 'unknown action "fly"'],
    [{ principal: { kind: { case: 'entity' as const, value: { type: 'User', id: 'a' } } }, action: 'read', resource: { type: 'Spaceship', id: 's' } }, 'unknown resource type "Spaceship"'],
  ])('answers INVALID_ARGUMENT naming the problem (%#)', async (request, details) => {
    const err = await fail(app.check(request));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toBe(details);
  });

  it('refuses malformed entity JSON and malformed protobuf with INVALID_ARGUMENT, and keeps serving', async () => {
    const bad = await fail(app.check({ principal: { kind: { case: 'entity', value: { type: 'User', id: 'a' } } }, action: 'read', resource: doc('d1', { owner: { __extn: { fn: 'ip', arg: 'not-an-ip' } } }) }));
    expect(bad.code).toBe(status.INVALID_ARGUMENT);
    expect(bad.details).toMatch(/^invalid entities: /);
    const badContext = await fail(app.check({ principal: { kind: { case: 'entity', value: { type: 'User', id: 'a' } } }, action: 'read', resource: doc('d1'), context: { ratio: 1.5 } }));
    expect(badContext.code).toBe(status.INVALID_ARGUMENT);
    expect(badContext.details).toMatch(/^invalid context: /);
    const garbage = await fail(app.checkRaw(Uint8Array.from([0x0a, 0xff, 0xff])));
    expect(garbage.code).toBe(status.INVALID_ARGUMENT);
    expect((await app.check({ principal: { kind: { case: 'token', value: await token('vic', ['viewer']) } }, action: 'read', resource: doc('d1') })).decision).toBe(Decision.ALLOW);
  });

  it('counts app decisions apart from Envoy ones and reports the service as SERVING', async () => {
    expect(await metricValue(sidecar.metrics, 'auth_authz_decisions_total', { source: 'app' })).toBeGreaterThan(0);
    expect(await metricValue(sidecar.metrics, 'auth_authz_decisions_total', { source: 'envoy' })).toBe(0);
    expect((await healthCheck(sidecar.address, 'portcullis.authz.v1.Authorizer')).status).toBe(1);
  });
});

describe('portcullis.authz.v1.Authorizer/BatchCheck', () => {
  it('answers every (action, resource) pair in order for one principal', async () => {
    const res = await app.batchCheck({
      principal: { kind: { case: 'token', value: await token('alice', ['viewer'], { amr: ['pwd', 'otp'] }) } },
      items: [
        { action: 'read', resource: doc('d1') },
        { action: 'read', resource: doc('d2') },
        { action: 'update', resource: doc('d1') },
        { action: 'update', resource: doc('d2') },
        { action: 'delete', resource: doc('d1') },
        { action: 'list', resource: { type: 'Collection', id: 'documents' } },
      ],
    });
    expect(res.results.map((r) => r.decision === Decision.ALLOW)).toEqual([true, true, true, false, true, true]);
    expect(res.results[2]!.determiningPolicies).toEqual(['owner-manage']);
    expect(new Set(res.results.map((r) => r.decisionId)).size).toBe(6);
  });

  it('answers a document asked about again, with the same attributes, from the decision cache; a changed attribute is decided anew', async () => {
    const principal = { kind: { case: 'token' as const, value: await token('olga', ['viewer']) } };
    const owned = (owner: string) => ({ action: 'update', resource: doc('cache-1', { owner: { __entity: { type: 'User', id: owner } } }) });
    const hits = () => metricValue(sidecar.metrics, 'auth_authz_decision_cache_hits_total');
    const ask = async (owner: string) => (await app.batchCheck({ principal, items: [owned(owner), { action: 'read', resource: doc('cache-2', { owner: { __entity: { type: 'User', id: owner } } }) }] })).results.map((r) => r.decision === Decision.ALLOW);
    const before = await hits();
    expect(await ask('olga')).toEqual([true, true]);
    expect(await hits()).toBe(before);
    expect(await ask('olga')).toEqual([true, true]);
    expect(await hits()).toBe(before + 2);
    // Another owner: a new key, so the engine decides (the owner rule no longer applies to update).
    expect(await ask('pete')).toEqual([false, true]);
    expect(await hits()).toBe(before + 2);
    expect(await ask('olga')).toEqual([true, true]);
    expect(await hits()).toBe(before + 4);
  });

  it('names the item of an invalid batch entry and refuses an empty batch', async () => {
    const principal = { kind: { case: 'entity' as const, value: { type: 'User', id: 'a' } } };
    const err = await fail(app.batchCheck({ principal, items: [{ action: 'read', resource: doc('d1') }, { action: 'read', resource: { id: 'x' } }] }));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toBe('items[1].resource.type: required');
    const empty = await fail(app.batchCheck({ principal, items: [] }));
    expect(empty.details).toBe('items: at least one item is required');
    const tooMany = await fail(app.batchCheck({ principal, items: Array.from({ length: 1001 }, () => ({ action: 'read', resource: doc('d1') })) }));
    expect(tooMany.code).toBe(status.INVALID_ARGUMENT);
    expect(tooMany.details).toBe('items: at most 1000 items per call');
  });
});

describe('token-derived context', () => {
  it('takes mfa and scopes from the verified token, not from the caller', async () => {
    const noMfa = await token('alice', []);
    const claimed = await app.check({ principal: { kind: { case: 'token', value: noMfa } }, action: 'delete', resource: doc('d1'), context: { mfa: true } });
    expect(claimed).toMatchObject({ decision: Decision.DENY, determiningPolicies: ['delete-requires-mfa'] });
    const withMfa = await token('alice', [], { amr: ['pwd', 'otp'] });
    expect((await app.check({ principal: { kind: { case: 'token', value: withMfa } }, action: 'delete', resource: doc('d1') })).decision).toBe(Decision.ALLOW);
  });
});

describe('portcullis.authz.v1.Authorizer/Plan', () => {
  const user = (id: string, roles: string[]) => ({ kind: { case: 'entity' as const, value: { type: 'User', id, parents: roles.map((r) => ({ type: 'Role', id: r })) } } });
  const condition = (res: { condition?: Parameters<typeof toJson<typeof ValueSchema>>[1] }) => toJson(ValueSchema, res.condition!);

  it('returns the ownership condition when access depends on the resource', async () => {
    const res = await app.plan({ principal: user('alice', []), action: 'update', resourceType: 'Document' });
    expect(res.kind).toBe(PlanKind.CONDITIONAL);
    expect(condition(res)).toEqual({
      op: 'and',
      args: [
        { op: 'has', attr: 'owner', of: { var: 'resource' } },
        { op: 'eq', args: [{ attr: 'owner', of: { var: 'resource' } }, { entity: { type: 'User', id: 'alice' } }] },
      ],
    });
    expect(Object.keys(res.residuals ?? {})).toEqual(['owner-manage']);
    expect(res.policiesConsidered).toEqual(['owner-manage', 'admin-all', 'editor-write']);
  });

  it('answers always allowed or always denied when the resource does not matter', async () => {
    expect((await app.plan({ principal: user('vic', ['viewer']), action: 'read', resourceType: 'Document' })).kind).toBe(PlanKind.ALWAYS_ALLOWED);
    expect((await app.plan({ principal: user('eve', ['editor']), action: 'delete', resourceType: 'Document', context: { mfa: false } })).kind).toBe(PlanKind.ALWAYS_DENIED);
    expect((await app.plan({ principal: user('root', ['admin']), action: 'delete', resourceType: 'Document', context: { mfa: true } })).kind).toBe(PlanKind.ALWAYS_ALLOWED);
  });

  it('plans for a token principal and refuses unknown actions', async () => {
    const res = await app.plan({ principal: { kind: { case: 'token', value: await token('alice', []) } }, action: 'update', resourceType: 'Document' });
    expect(res.kind).toBe(PlanKind.CONDITIONAL);
    const err = await fail(app.plan({ principal: user('a', []), action: 'fly', resourceType: 'Document' }));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toBe('unknown action "fly"');
    const missing = await fail(app.plan({ principal: user('a', []), action: 'read' }));
    expect(missing.details).toBe('resource_type: required');
  });
});
