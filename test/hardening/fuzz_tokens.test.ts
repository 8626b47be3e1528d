import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/lib/clock.js';
import { isPortcullisError } from '../../src/lib/errors.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { createLocalKeySource, createRemoteKeySource, createTokenVerifier, TOKEN_ERROR_DESCRIPTIONS, type TokenVerifier } from '../../src/tokens/index.js';
import { parseConfig } from '../../src/config/index.js';
import { extractCredential } from '../../src/tokens/index.js';
import { makeKey, signToken, startJwksServer, type JwksServer, type SigningKey } from '../helpers/jwks_server.js';

/**
 * Arbitrary strings and structurally plausible JWTs through the real token verifier (a remote
 * JWKS issuer over HTTP and an in-process one): every input is rejected with a PortcullisError
 * whose code has a client-safe description — no other exception, no unhandled rejection, never a
 * principal. Valid tokens, mutated in any one character, are rejected too.
 */
const RUN = { numRuns: 300, interruptAfterTimeLimit: 5_000, markInterruptAsFailure: false } as const;
const LOCAL_ISSUER = 'urn:fuzz:local';

let idp: JwksServer;
let remoteKey: SigningKey;
let localKey: SigningKey;
let verifier: TokenVerifier;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => void unhandled.push(reason);

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  idp = await startJwksServer();
  [remoteKey, localKey] = await Promise.all([makeKey('r1'), makeKey('l1')]);
  idp.keys = [remoteKey.publicJwk];
  const metrics = createMetrics();
  const logger = createLogger('silent');
  const [remote] = parseConfig({ dev_issuer: { enabled: false }, issuers: [{ issuer: idp.issuer, jwks_uri: idp.jwksUri, audiences: ['api'], jwks: { cooldown_seconds: 0, request_budget_ms: 500 } }] }).issuers;
  const keys = createRemoteKeySource(remote!, { clock: systemClock, metrics, logger });
  await keys.start();
  verifier = createTokenVerifier({
    issuers: [
      { policy: remote!, keys },
      { policy: { issuer: LOCAL_ISSUER, audiences: ['api'], algorithms: ['ES256'], clock_skew_seconds: 30, required_typ: 'at+jwt', roles_claim: 'roles', scope_claim: 'scope' }, keys: createLocalKeySource({ keys: [localKey.publicJwk] }) },
    ],
    clock: systemClock,
    metrics,
    cacheMaxEntries: 100,
  });
});

afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await idp?.close();
});

async function expectRejected(token: string): Promise<void> {
  let outcome: unknown;
  try {
    outcome = await verifier.verify(token);
  } catch (err) {
    outcome = err;
  }
  expect(isPortcullisError(outcome), `not a PortcullisError for ${JSON.stringify(token.slice(0, 80))}: ${String(outcome)}`).toBe(true);
  const code = (outcome as { code: keyof typeof TOKEN_ERROR_DESCRIPTIONS }).code;
  expect(TOKEN_ERROR_DESCRIPTIONS[code], `code ${code} has no client description`).toBeDefined();
}

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const issuerArb = () => fc.oneof(fc.constant(idp.issuer), fc.constant(LOCAL_ISSUER), fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 1 }));
const headerArb = () =>
  fc.record(
    { alg: fc.oneof(fc.constantFrom('ES256', 'RS256', 'none', 'HS256', 'EdDSA', 'PS256'), fc.jsonValue({ maxDepth: 1 })), kid: fc.oneof(fc.constantFrom('r1', 'l1'), fc.jsonValue({ maxDepth: 1 })), typ: fc.oneof(fc.constant('at+jwt'), fc.jsonValue({ maxDepth: 1 })), crit: fc.jsonValue({ maxDepth: 1 }), b64: fc.jsonValue({ maxDepth: 0 }), jku: fc.string({ maxLength: 20 }) },
    { requiredKeys: [] },
  );
const payloadArb = () =>
  fc.record(
    { iss: issuerArb(), sub: fc.jsonValue({ maxDepth: 1 }), aud: fc.oneof(fc.constant('api'), fc.jsonValue({ maxDepth: 1 })), exp: fc.oneof(fc.integer(), fc.jsonValue({ maxDepth: 0 })), nbf: fc.jsonValue({ maxDepth: 0 }), iat: fc.jsonValue({ maxDepth: 0 }), roles: fc.jsonValue({ maxDepth: 2 }) },
    { requiredKeys: [] },
  );

describe('fuzzing the token verifier', () => {
  it('rejects arbitrary strings with a described PortcullisError', async () => {
    await fc.assert(fc.asyncProperty(fc.oneof(fc.string({ maxLength: 300 }), fc.string({ maxLength: 100, unit: 'binary' }), fc.stringMatching(/^[A-Za-z0-9_.-]{0,200}$/)), expectRejected), RUN);
  });

  it('rejects structurally plausible JWTs with arbitrary headers, claims and signatures', async () => {
    await fc.assert(
      fc.asyncProperty(headerArb(), payloadArb(), fc.uint8Array({ maxLength: 300 }), async (h, p, sig) => {
        await expectRejected(`${b64(h)}.${b64(p)}.${Buffer.from(sig).toString('base64url')}`);
      }),
      RUN,
    );
  });

  it('rejects a valid token of either issuer with any one character changed', async () => {
    const tokens = [await signToken({ sub: 'u', roles: ['viewer'] }, { key: remoteKey, issuer: idp.issuer, audience: 'api' }), await signToken({ sub: 'u' }, { key: localKey, issuer: LOCAL_ISSUER, audience: 'api' })];
    for (const t of tokens) expect((await verifier.verify(t)).subject).toBe('u');
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...tokens), fc.nat(), fc.constantFrom(...'ABCDEFabcdef0123456789-_.='), async (token, at, ch) => {
        const i = at % token.length;
        fc.pre(token[i] !== ch);
        const mutated = token.slice(0, i) + ch + token.slice(i + 1);
        // Changing a base64url character can leave the decoded bytes identical (unused low bits of
        // the last character): then the token is the same token, and valid.
        const same = mutated.split('.').length === 3 && mutated.split('.').every((part, n) => Buffer.from(part, 'base64url').equals(Buffer.from(token.split('.')[n]!, 'base64url'))) && /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(mutated);
        if (same) return;
        await expectRejected(mutated);
      }),
      RUN,
    );
  });

  it('reads any Authorization header value into none, bearer or invalid without throwing', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 60, unit: 'binary' }), { maxLength: 3 }), (values) => {
        const c = extractCredential(values);
        expect(['none', 'bearer', 'invalid']).toContain(c.kind);
        if (c.kind === 'bearer') expect(c.token).not.toBe('');
      }),
      { numRuns: 500 },
    );
  });

  it('left no unhandled rejection behind', () => {
    expect(unhandled).toEqual([]);
  });
});
