import { create, toBinary, type JsonObject, type JsonValue } from '@bufbuild/protobuf';
import { Client, credentials, status, type ServiceError } from '@grpc/grpc-js';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCheckRequest } from '../../src/extauthz/check_request_wire.js';
import { httpCheckRequest, type CheckRequestInit } from '../../src/extauthz/client.js';
import { CheckRequestSchema, type CheckResponse } from '../../src/gen/envoy/service/auth/v3/external_auth_pb.js';
import { BatchCheckRequestSchema, PlanRequestSchema } from '../../src/gen/portcullis/authz/v1/authorizer_pb.js';
import { matchRoute } from '../../src/policy/index.js';
import { parseRequestPath } from '../../src/pipeline/request_path.js';
import { makeKey, signToken, startJwksServer, type JwksServer, type SigningKey } from '../helpers/jwks_server.js';
import { startSidecar, type Sidecar } from '../helpers/sidecar.js';

/**
 * Property-based tests over the real gRPC server (fast-check, bounded in runs and time).
 * Whatever arrives — arbitrary bytes, or any well-formed CheckRequest with forged credentials —
 * the answer is INVALID_ARGUMENT or a valid CheckResponse, the server keeps answering, and a
 * request without a valid credential is allowed only on a route marked `anonymous`.
 */
const RUN = { numRuns: 150, interruptAfterTimeLimit: 6_000, markInterruptAsFailure: false } as const;

let idp: JwksServer;
let key: SigningKey;
let attacker: SigningKey;
let sidecar: Sidecar;
let raw: Client;

beforeAll(async () => {
  idp = await startJwksServer();
  [key, attacker] = await Promise.all([makeKey('k1'), makeKey('k1')]);
  idp.keys = [key.publicJwk];
  sidecar = await startSidecar({ issuers: [{ issuer: idp.issuer, jwks_uri: idp.jwksUri, audiences: ['api'] }], limits: { max_header_count: 40 } });
  raw = new Client(sidecar.address, credentials.createInsecure());
});

afterAll(async () => {
  raw?.close();
  await sidecar?.close();
  await idp?.close();
});

/** Sends bytes as the request message of an app API method; resolves with the raw response bytes. */
const rawAppCall = (method: string, bytes: Uint8Array) =>
  new Promise<Buffer>((resolve, reject) => {
    raw.makeUnaryRequest(`/portcullis.authz.v1.Authorizer/${method}`, (b: Uint8Array) => Buffer.from(b), (b: Buffer) => b, bytes, { deadline: Date.now() + 5000 }, (err: ServiceError | null, res?: Buffer) => (err ? reject(err) : resolve(res!)));
  });

const asError = (p: Promise<unknown>) => p.then((r) => ({ ok: r }), (e: unknown) => ({ err: e as ServiceError }));

/** True when the (method, path) is routed to a route marked anonymous in the live policy set. */
function anonymousRoute(method: string, path: string): boolean {
  const parsed = parseRequestPath(path);
  if (!parsed.ok) return false;
  const match = matchRoute(sidecar.server.policies.current()!.bundle.routes, method, parsed.segments);
  return match?.route.anonymous === true;
}

/** A CheckResponse is one of the shapes the README documents, consistent in its gRPC and HTTP codes. */
function expectValidResponse(res: CheckResponse): void {
  const code = res.status?.code ?? 0;
  if (res.httpResponse.case === 'okResponse') {
    expect(code).toBe(0);
    return;
  }
  expect(res.httpResponse.case).toBe('deniedResponse');
  if (res.httpResponse.case !== 'deniedResponse') return;
  const http = res.httpResponse.value.status?.code;
  expect({ 400: 3, 401: 16, 403: 7 }[http as 400 | 401 | 403]).toBe(code);
  const body = JSON.parse(res.httpResponse.value.body) as Record<string, unknown>;
  expect(typeof body.decision_id).toBe('string');
  expect(['bad_request', 'unauthenticated', 'invalid_token', 'forbidden']).toContain(body.error);
  const challenge = res.httpResponse.value.headers.find((h) => h.header?.key === 'www-authenticate')?.header?.value;
  if (http === 401) expect(challenge).toMatch(/^Bearer realm="portcullis"/);
  else expect(challenge).toBeUndefined();
}

async function stillAnswers(): Promise<void> {
  const res = await sidecar.client.check(httpCheckRequest('GET', '/public/x'));
  expect(res.httpResponse.case).toBe('okResponse');
}

// --- arbitraries -----------------------------------------------------------------------------

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
// Mostly paths the routes know (so decisions reach authentication and policies), some hostile.
const segment = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('documents', 'public', 'd1', 'd2', 'healthz', 'x', 'index.html') },
  { weight: 2, arbitrary: fc.stringMatching(/^[A-Za-z0-9._~-]{1,12}$/) },
  { weight: 1, arbitrary: fc.constantFrom('..', '.', '', '%2F', '%2e%2e', '%00', '%ZZ', '%5C', '%E2%80%AE', 'a%20b') },
  { weight: 1, arbitrary: fc.string({ maxLength: 8, unit: 'binary' }) },
);
const path = fc.oneof(
  { weight: 6, arbitrary: fc.array(segment, { minLength: 1, maxLength: 4 }).map((s) => `/${s.join('/')}`) },
  { weight: 2, arbitrary: fc.tuple(fc.array(segment, { minLength: 1, maxLength: 3 }), fc.string({ maxLength: 20 })).map(([s, q]) => `/${s.join('/')}?${q}`) },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
);
const method = fc.oneof({ weight: 8, arbitrary: fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE') }, { weight: 1, arbitrary: fc.constantFrom('OPTIONS', 'get', '') }, { weight: 1, arbitrary: fc.string({ maxLength: 8 }) });
/** Credentials that are never valid: garbage, forged and structurally plausible tokens. */
const credential = fc.oneof(
  fc.constant(undefined),
  fc.string({ maxLength: 60 }),
  fc.string({ maxLength: 200 }).map((t) => `Bearer ${t}`),
  fc.tuple(fc.jsonValue({ maxDepth: 2 }), fc.jsonValue({ maxDepth: 2 }), fc.string({ maxLength: 40 })).map(([h, p, s]) => `Bearer ${b64(h)}.${b64(p)}.${b64(s)}`),
  fc.record({ alg: fc.constantFrom('none', 'ES256', 'HS256', 'RS256', 'NONE'), kid: fc.oneof(fc.constant('k1'), fc.string({ maxLength: 10 })), typ: fc.constantFrom('at+jwt', 'JWT') }).map((h) => `Bearer ${b64(h)}.${b64({ iss: 'x', sub: 'admin', roles: ['admin'], exp: 4102444800 })}.`),
);
const headerName = fc.oneof(fc.constantFrom('content-type', 'x-portcullis-subject', 'x-request-id', ':authority', 'cookie', 'x-forwarded-for'), fc.string({ minLength: 1, maxLength: 10 }));
const headers = fc.dictionary(headerName, fc.string({ maxLength: 60 }), { maxKeys: 8 });
const body = fc.option(
  fc.oneof(
    { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => ({ type: 'application/json', text: JSON.stringify(v) })) },
    fc.tuple(fc.constantFrom('application/json', 'application/x-www-form-urlencoded', 'text/plain'), fc.string({ maxLength: 80 })).map(([type, text]) => ({ type, text })),
    fc.uint8Array({ maxLength: 80 }).map((raw) => ({ type: 'application/json', raw })),
  ),
  { nil: undefined, freq: 2 },
);

const checkRequest = fc
  .record({ method, path, credential, headers, body, rawHeaders: fc.boolean(), extensions: fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 20 }), { maxKeys: 3 }), host: fc.string({ maxLength: 20 }), sourceIp: fc.oneof(fc.ipV4(), fc.ipV6(), fc.string({ maxLength: 10 })) })
  .map((r) => {
    const all: Record<string, string> = { ...r.headers };
    if (r.credential !== undefined) all.authorization = r.credential;
    if (r.body) all['content-type'] = r.body.type;
    const req: CheckRequestInit = httpCheckRequest(r.method, r.path, {}, { host: r.host, sourceIp: r.sourceIp });
    const http = req.attributes!.request!.http!;
    if (r.rawHeaders) http.headerMap = { headers: Object.entries(all).map(([k, v]) => ({ key: k, rawValue: Buffer.from(v) })) };
    else http.headers = Object.fromEntries(Object.entries(all).map(([k, v]) => [k.toLowerCase(), v]));
    if (r.body && 'raw' in r.body) http.rawBody = r.body.raw;
    else if (r.body) http.body = r.body.text;
    req.attributes!.contextExtensions = r.extensions;
    return { req, method: r.method, path: r.path };
  });

/** A valid encoded CheckRequest with bytes flipped, cut or spliced: mostly decodable, often wrong. */
const mutatedBytes = fc
  .record({ base: checkRequest, flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 2 }), cut: fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.nat() }) })
  .map(({ base, flips, cut }) => {
    const bytes = Buffer.from(toBinary(CheckRequestSchema, create(CheckRequestSchema, base.req)));
    for (const [at, v] of flips) if (bytes.length) bytes[at % bytes.length] = v;
    return cut === undefined || bytes.length === 0 ? bytes : bytes.subarray(0, cut % bytes.length);
  });

// --- properties ------------------------------------------------------------------------------

describe('fuzzing the Envoy Check decoder with bytes', () => {
  it('answers arbitrary and mutated bytes with INVALID_ARGUMENT or a valid CheckResponse, and keeps serving', async () => {
    let decoded = 0;
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(fc.oneof({ weight: 1, arbitrary: fc.uint8Array({ maxLength: 1024 }) }, { weight: 3, arbitrary: mutatedBytes }), async (bytes) => {
        const answer = await asError(sidecar.client.checkRaw(bytes));
        if ('err' in answer) {
          expect(answer.err.code).toBe(status.INVALID_ARGUMENT);
          expect(answer.err.details).toBe('malformed CheckRequest');
          refused++;
          return;
        }
        decoded++;
        expectValidResponse(answer.ok as CheckResponse);
        // Decoded garbage carries no valid credential: an allow must be an anonymous route.
        if ((answer.ok as CheckResponse).httpResponse.case === 'okResponse') {
          // Read as the server reads it (it skips fields it does not use unparsed, where protobuf-es may refuse them).
          const input = readCheckRequest(bytes);
          expect(anonymousRoute(input.method, input.path), `allowed ${input.method} ${JSON.stringify(input.path)}`).toBe(true);
        }
      }),
      RUN,
    );
    expect(decoded).toBeGreaterThan(0);
    expect(refused).toBeGreaterThan(0);
    await stillAnswers();
  });
});

describe('fuzzing the pipeline with well-formed CheckRequests', () => {
  it('gives every request a valid answer and never allows a protected route without a valid credential', async () => {
    let allowed = 0;
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(checkRequest, async ({ req, method: m, path: p }) => {
        const answer = await asError(sidecar.client.check(req));
        if ('err' in answer) throw new Error(`gRPC error ${answer.err.code} ${answer.err.details} for a well-formed request`);
        const res = answer.ok as CheckResponse;
        expectValidResponse(res);
        const st = res.httpResponse.case === 'deniedResponse' ? res.httpResponse.value.status?.code ?? 0 : 200;
        statuses.set(st, (statuses.get(st) ?? 0) + 1);
        if (res.httpResponse.case === 'okResponse') {
          allowed++;
          expect(anonymousRoute(m, p), `allowed ${m} ${JSON.stringify(p)}`).toBe(true);
          const subject = res.httpResponse.value.headers.find((h) => h.header?.key === 'x-portcullis-subject');
          expect(subject).toBeUndefined();
        }
      }),
      RUN,
    );
    // The generator reaches authentication and policies, not only the path parser.
    expect(statuses.get(401)).toBeGreaterThan(0);
    expect(statuses.get(403)).toBeGreaterThan(0);
    expect(statuses.get(200) ?? 0).toBe(allowed);
    await stillAnswers();
  });

  it('never lets a forged token of the trusted issuer through, whatever its claims', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({ sub: fc.string({ minLength: 1, maxLength: 10 }), roles: fc.array(fc.constantFrom('admin', 'editor', 'viewer'), { maxLength: 3 }), amr: fc.constantFrom(['pwd'], ['pwd', 'mfa']), doc: fc.constantFrom('d1', 'd2', 'zz') }),
        fc.constantFrom('GET', 'PUT', 'DELETE'),
        async (claims, m) => {
          // Signed by a key the issuer never published, under the issuer's own kid.
          const forged = await signToken(claims, { key: attacker, issuer: idp.issuer, audience: 'api' });
          const res = await sidecar.client.check(httpCheckRequest(m, `/documents/${claims.doc}`, { authorization: `Bearer ${forged}` }));
          expectValidResponse(res);
          expect(res.httpResponse.case).toBe('deniedResponse');
          if (res.httpResponse.case === 'deniedResponse') expect(res.httpResponse.value.status?.code).toBe(401);
        },
      ),
      { ...RUN, numRuns: 40 },
    );
  });
});

describe('fuzzing the app API decoder', () => {
  it('answers arbitrary bytes on Check, BatchCheck and Plan with a response or a client error, never INTERNAL', async () => {
    const methods = ['Check', 'BatchCheck', 'Plan'] as const;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...methods), fc.uint8Array({ maxLength: 512 }), async (m, bytes) => {
        const answer = await asError(rawAppCall(m, bytes));
        if ('err' in answer) expect([status.INVALID_ARGUMENT, status.UNAUTHENTICATED]).toContain(answer.err.code);
      }),
      RUN,
    );
    await stillAnswers();
  });
});

describe('fuzzing the app API with well-formed requests', () => {
  const json = fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<JsonValue>;
  const jsonObject = fc.dictionary(fc.oneof(fc.constantFrom('owner', '__entity', '__extn', 'mfa', 'time'), fc.string({ maxLength: 8 })), json, { maxKeys: 4 });
  const typeName = fc.oneof(fc.constantFrom('User', 'Document', 'Role', 'Collection', 'Endpoint'), fc.string({ maxLength: 10 }));
  const entity = fc.record({ type: typeName, id: fc.string({ maxLength: 10 }), attributes: jsonObject, parents: fc.array(fc.record({ type: typeName, id: fc.string({ maxLength: 6 }) }), { maxLength: 2 }) });
  const principal = fc.oneof(
    fc.string({ maxLength: 80 }).map((t) => ({ kind: { case: 'token' as const, value: t } })),
    entity.map((e) => ({ kind: { case: 'entity' as const, value: e } })),
  );
  const action = fc.oneof(fc.constantFrom('read', 'update', 'delete', 'list', 'create', 'read_public'), fc.string({ maxLength: 8 }));
  const batch = fc.record({ principal, items: fc.array(fc.record({ action, resource: entity }), { minLength: 0, maxLength: 3 }), context: jsonObject, entities: fc.array(entity, { maxLength: 3 }), requestId: fc.string({ maxLength: 8 }) });

  it('answers BatchCheck and Plan with a response or INVALID_ARGUMENT / UNAUTHENTICATED, never INTERNAL; a token principal is never valid here', async () => {
    await fc.assert(
      fc.asyncProperty(batch, fc.boolean(), async (r, asPlan) => {
        const bytes = asPlan
          ? toBinary(PlanRequestSchema, create(PlanRequestSchema, { principal: r.principal, action: r.items[0]?.action ?? 'read', resourceType: r.items[0]?.resource.type ?? 'Document', context: r.context as JsonObject, entities: r.entities.map(asEntity), requestId: r.requestId }))
          : toBinary(BatchCheckRequestSchema, create(BatchCheckRequestSchema, { principal: r.principal, items: r.items.map((i) => ({ action: i.action, resource: asEntity(i.resource) })), context: r.context as JsonObject, entities: r.entities.map(asEntity), requestId: r.requestId }));
        const answer = await asError(rawAppCall(asPlan ? 'Plan' : 'BatchCheck', bytes));
        if ('err' in answer) {
          expect([status.INVALID_ARGUMENT, status.UNAUTHENTICATED], `${answer.err.code} ${answer.err.details}`).toContain(answer.err.code);
        } else {
          expect(r.principal.kind.case, 'a garbage token was accepted').toBe('entity');
        }
      }),
      { ...RUN, numRuns: 120 },
    );
    await stillAnswers();
  });
});

function asEntity(e: { type: string; id: string; attributes: Record<string, JsonValue>; parents: Array<{ type: string; id: string }> }) {
  return { type: e.type, id: e.id, attributes: e.attributes as JsonObject, parents: e.parents };
}
