import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { httpCheckRequest } from '../../src/extauthz/client.js';
import { invalidTokenChallenge, moved, seen, seriesOf } from '../helpers/corpus.js';
import { makeKey, signToken, startJwksServer, type JwksMode, type JwksServer, type SigningKey } from '../helpers/jwks_server.js';
import { startRecorder, type Recorder } from '../helpers/recorder.js';
import { metricValue, startSidecar, type Sidecar } from '../helpers/sidecar.js';

/**
 * A hostile or broken JWKS endpoint, one row per failure: an unknown kid forces a refetch against
 * it. The Check that triggered the fetch is answered within the request budget, the last good
 * keys keep serving, and the failure is counted in `auth_jwks_fetch_errors_total{issuer,reason}`
 * with exactly the expected reason (or not at all for a slow but successful fetch).
 */
const BUDGET_MS = 300;
const FETCH_TIMEOUT_MS = 2000;
/** The Check that triggers a fetch must answer within the budget; this margin covers a loaded machine, not the fetch. */
const ANSWER_WITHIN_MS = 1000;

let idp: JwksServer;
let recorder: Recorder;
let key: SigningKey;
let sidecar: Sidecar;
let n = 0;

beforeAll(async () => {
  [idp, recorder] = await Promise.all([startJwksServer(), startRecorder()]);
  key = await makeKey('k1');
  idp.keys = [key.publicJwk];
  idp.redirectTo = `${recorder.url}/jwks.json`;
  sidecar = await startSidecar({
    issuers: [{ issuer: idp.issuer, jwks_uri: idp.jwksUri, audiences: ['api'], jwks: { cooldown_seconds: 0, request_budget_ms: BUDGET_MS, fetch_timeout_ms: FETCH_TIMEOUT_MS } }],
  });
});

afterEach(() => {
  idp.mode = 'ok';
});

afterAll(async () => {
  await sidecar?.close();
  await Promise.all([idp?.close(), recorder?.close()]);
});

const check = async (signWith: SigningKey) => {
  const jwt = await signToken({ sub: `user-${++n}`, roles: ['viewer'] }, { key: signWith, issuer: idp.issuer, audience: 'api' });
  return seen(await sidecar.client.check(httpCheckRequest('GET', '/documents/d1', { authorization: `Bearer ${jwt}` })));
};
const fetchErrors = () => seriesOf(sidecar.metrics, 'auth_jwks_fetch_errors_total');
const fetchesDone = () => metricValue(sidecar.metrics, 'auth_jwks_fetch_duration_seconds_count', { issuer: idp.issuer });

interface Row {
  name: string;
  mode: JwksMode;
  setup?: () => void;
  /** The fetch error reason counted, or undefined when the fetch ends well (only slowly). */
  reason: string | undefined;
  /** Also counted as an exceeded limit. */
  limit?: string;
}

const rows: Row[] = [
  { name: 'HTTP 500', mode: 'error500', reason: 'http_status' },
  { name: 'HTTP 404', mode: 'not_found', reason: 'http_status' },
  { name: 'garbage instead of JSON', mode: 'garbage', reason: 'invalid_json' },
  { name: 'a redirect (never followed)', mode: 'redirect', reason: 'redirect' },
  { name: 'a 10 MB document with content-length', mode: 'huge', setup: () => (idp.hugeBytes = 10 * 1024 * 1024), reason: 'too_large', limit: 'jwks_document' },
  { name: 'a 10 MB document without content-length', mode: 'huge_chunked', setup: () => (idp.hugeBytes = 10 * 1024 * 1024), reason: 'too_large', limit: 'jwks_document' },
  { name: 'JSON without a keys array', mode: 'no_keys_array', reason: 'invalid_document' },
  { name: 'only symmetric and private keys', mode: 'private_only', reason: 'invalid_document' },
  { name: 'an answer slower than the request budget (the fetch itself succeeds)', mode: 'slow', setup: () => (idp.delayMs = BUDGET_MS + 600), reason: undefined },
  { name: 'no answer within the fetch timeout', mode: 'hang', reason: 'timeout' },
];

describe('JWKS endpoint failures', () => {
  it.each(rows.map((r) => [r.name, r] as const))('%s: the Check answers within the budget, the last good keys keep serving, the failure is counted', async (_name, row) => {
    expect((await check(key)).status).toBe(200);
    const errorsBefore = await fetchErrors();
    const limitsBefore = await seriesOf(sidecar.metrics, 'auth_limit_exceeded_total');
    const fetchesBefore = await fetchesDone();
    const requestsBefore = idp.jwksRequests;
    row.setup?.();
    idp.mode = row.mode;

    const started = performance.now();
    const unknown = await check(await makeKey(`rotated-${n}`));
    const elapsed = performance.now() - started;
    expect(unknown.status).toBe(401);
    expect(unknown.wwwAuthenticate).toBe(invalidTokenChallenge('signing key not found'));
    expect(elapsed).toBeLessThan(ANSWER_WITHIN_MS);
    expect(idp.jwksRequests).toBe(requestsBefore + 1);

    // The known key answers at once while the endpoint misbehaves.
    expect((await check(key)).status).toBe(200);
    // Wait for the background fetch to end, then compare exactly what was counted.
    await expect.poll(fetchesDone, { timeout: FETCH_TIMEOUT_MS + 3000, interval: 50 }).toBe(fetchesBefore + 1);
    expect(moved(errorsBefore, await fetchErrors())).toEqual(row.reason ? { [`issuer=${idp.issuer},reason=${row.reason}`]: 1 } : {});
    expect(moved(limitsBefore, await seriesOf(sidecar.metrics, 'auth_limit_exceeded_total'))).toEqual(row.limit ? { [`limit=${row.limit}`]: 1 } : {});
    idp.mode = 'ok';
    expect((await check(key)).status).toBe(200);
    expect(recorder.hits).toEqual([]);
  });

  it('kept the issuer ready and its keys counted throughout', async () => {
    expect(await metricValue(sidecar.metrics, 'auth_jwks_keys', { issuer: idp.issuer })).toBe(1);
    const ready = await fetch(`http://127.0.0.1:${sidecar.server.adminPort}/ready`);
    expect(ready.status).toBe(200);
  });
});
