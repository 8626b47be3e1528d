import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/index.js';
import { createManualClock } from '../../../src/lib/clock.js';
import { isPortcullisError } from '../../../src/lib/errors.js';
import { createLogger } from '../../../src/telemetry/logger.js';
import { createMetrics } from '../../../src/telemetry/metrics.js';
import { createRemoteKeySource } from '../../../src/tokens/remote_jwks.js';
import { makeKey, startJwksServer, type JwksServer, type SigningKey } from '../../helpers/jwks_server.js';

let idp: JwksServer;
let key: SigningKey;

beforeAll(async () => {
  idp = await startJwksServer();
  key = await makeKey('k1');
});

afterAll(async () => {
  await idp.close();
});

beforeEach(() => {
  idp.keys = [key.publicJwk];
  idp.mode = 'ok';
  idp.cacheControl = 'max-age=300';
  idp.jwksRequests = 0;
});

function source(jwks: Record<string, number> = {}) {
  const clock = createManualClock();
  const metrics = createMetrics();
  const issuer = parseConfig({ dev_issuer: { enabled: false }, issuers: [{ issuer: idp.issuer, jwks_uri: idp.jwksUri, jwks: { request_budget_ms: 300, fetch_timeout_ms: 300, ...jwks } }] }).issuers[0]!;
  const keys = createRemoteKeySource(issuer, { clock, metrics, logger: createLogger('silent') });
  return { clock, metrics, keys };
}

const header = { alg: 'ES256', kid: 'k1' };
const seconds = (n: number) => n * 1000;

describe('remote JWKS key source', () => {
  it('fetches once on first use and serves later lookups from memory', async () => {
    const { keys } = source();
    expect(keys.hasKeys()).toBe(false);
    expect(await keys.keysFor(header)).toHaveLength(1);
    expect(await keys.keysFor(header)).toHaveLength(1);
    expect(idp.jwksRequests).toBe(1);
    expect(keys.hasKeys()).toBe(true);
  });

  it('honours Cache-Control max-age: fresh until it passes, then revalidates in the background', async () => {
    idp.cacheControl = 'max-age=120';
    const { keys, clock } = source();
    await keys.keysFor(header);
    clock.advance(seconds(100));
    await keys.keysFor(header);
    expect(idp.jwksRequests).toBe(1);
    clock.advance(seconds(30));
    expect(await keys.keysFor(header)).toHaveLength(1); // answered from the held set at once
    await expect.poll(() => idp.jwksRequests).toBe(2);
  });

  it('clamps max-age to refresh_min_seconds and refresh_max_seconds', async () => {
    idp.cacheControl = 'max-age=5';
    const short = source({ refresh_min_seconds: 60, refresh_max_seconds: 600 });
    await short.keys.keysFor(header);
    short.clock.advance(seconds(30));
    await short.keys.keysFor(header);
    expect(idp.jwksRequests).toBe(1); // 5 s was raised to 60 s
    short.clock.advance(seconds(31));
    await short.keys.keysFor(header);
    await expect.poll(() => idp.jwksRequests).toBe(2);

    idp.jwksRequests = 0;
    idp.cacheControl = 'max-age=86400';
    const long = source({ refresh_min_seconds: 60, refresh_max_seconds: 600 });
    await long.keys.keysFor(header);
    long.clock.advance(seconds(601));
    await long.keys.keysFor(header);
    await expect.poll(() => idp.jwksRequests).toBe(2); // a day was lowered to 600 s
  });

  it('uses refresh_max_seconds without Cache-Control', async () => {
    idp.cacheControl = undefined;
    const { keys, clock } = source({ refresh_max_seconds: 900 });
    await keys.keysFor(header);
    clock.advance(seconds(899));
    await keys.keysFor(header);
    expect(idp.jwksRequests).toBe(1);
    clock.advance(seconds(2));
    await keys.keysFor(header);
    await expect.poll(() => idp.jwksRequests).toBe(2);
  });

  it('keeps serving the last good keys through failures until the stale window ends', async () => {
    idp.cacheControl = 'max-age=60';
    const { keys, clock, metrics } = source({ refresh_min_seconds: 60, stale_seconds: 3600 });
    await keys.keysFor(header);
    idp.mode = 'error500';
    clock.advance(seconds(60 + 3500));
    expect(await keys.keysFor(header)).toHaveLength(1);
    await expect.poll(async () => (await metrics.registry.getSingleMetricAsString('auth_jwks_fetch_errors_total')).includes('reason="http_status"')).toBe(true);
    clock.advance(seconds(200)); // past max-age + stale window
    expect(keys.hasKeys()).toBe(false);
    const err = await keys.keysFor(header).catch((e: unknown) => e);
    expect(isPortcullisError(err, 'ERR_KEYS_UNAVAILABLE')).toBe(true);
    idp.mode = 'ok'; // the endpoint recovers: keys come back on the next lookup
    expect(await keys.keysFor(header)).toHaveLength(1);
  });

  it('never waits longer than the request budget for a hanging endpoint', async () => {
    idp.mode = 'hang';
    const { keys } = source({ request_budget_ms: 150, fetch_timeout_ms: 2000 });
    const started = Date.now();
    const err = await keys.keysFor(header).catch((e: unknown) => e);
    expect(isPortcullisError(err, 'ERR_KEYS_UNAVAILABLE')).toBe(true);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('refetches on an unknown kid at most once per cooldown', async () => {
    const { keys, clock, metrics } = source({ cooldown_seconds: 30 });
    await keys.keysFor(header);
    const unknown = { alg: 'ES256', kid: 'k2' };
    await expect(keys.keysFor(unknown)).rejects.toMatchObject({ code: 'ERR_TOKEN_KEY_NOT_FOUND' });
    await expect(keys.keysFor(unknown)).rejects.toMatchObject({ code: 'ERR_TOKEN_KEY_NOT_FOUND' });
    expect(idp.jwksRequests).toBe(2);
    const k2 = await makeKey('k2');
    idp.keys = [key.publicJwk, k2.publicJwk];
    await expect(keys.keysFor(unknown)).rejects.toMatchObject({ code: 'ERR_TOKEN_KEY_NOT_FOUND' }); // still cooling down
    clock.advance(seconds(31));
    expect(await keys.keysFor(unknown)).toHaveLength(1);
    expect(idp.jwksRequests).toBe(3);
    expect(await metrics.registry.getSingleMetricAsString('auth_jwks_unknown_kid_refetch_total')).toContain(' 2');
  });

  it('returns every candidate key when the header names no kid', async () => {
    const k2 = await makeKey('k2');
    idp.keys = [key.publicJwk, k2.publicJwk];
    const { keys } = source();
    expect(await keys.keysFor({ alg: 'ES256' })).toHaveLength(2);
  });
});
