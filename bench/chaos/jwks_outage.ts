/**
 * The identity provider's JWKS endpoint is down for minutes while Checks with its tokens keep
 * arriving: the cached keys must keep serving (no Check fails, the key gauge never drops), the
 * background refreshes must notice the outage, and stop failing once the endpoint is back.
 */
import { AUTHORIZATION_CHECK_PATH } from '../../src/extauthz/service.js';
import { every, metricFrom, metricSum, scrape, sleep } from '../lib/long_run.js';
import { startNodeLoad } from '../lib/load_grpc.js';
import { checkBytes, startBenchIssuer } from '../lib/requests.js';
import { startPortcullis } from '../lib/target.js';
import { assertAllowed, describeLoad, type ExperimentResult } from './experiment.js';

const POLICIES = new URL('../../policies', import.meta.url).pathname;
/** Refresh every 5 s (the issuer's max-age is clamped to it), so the outage sees many failed refreshes. */
const REFRESH_SECONDS = 5;

export async function jwksOutage(o: { rate: number; downMs: number; beforeMs: number; afterMs: number }): Promise<ExperimentResult> {
  const issuer = await startBenchIssuer();
  const target = await startPortcullis(() =>
    [
      'observability: { logging: { level: info } }',
      `policies: { dir: ${POLICIES}, watch: false }`,
      'dev_issuer: { enabled: false }',
      'token_module: { enabled: false }',
      'issuers:',
      `  - issuer: ${issuer.issuer}`,
      `    jwks_uri: ${issuer.jwksUri}`,
      '    audiences: [bench]',
      `    jwks: { refresh_min_seconds: ${REFRESH_SECONDS}, refresh_max_seconds: ${REFRESH_SECONDS}, fetch_timeout_ms: 1000, stale_seconds: 86400 }`,
      '',
    ].join('\n'),
  );
  try {
    const tokens = [...(await issuer.mint('ES256', 32, { sub: 'alice', roles: ['viewer'] })), ...(await issuer.mint('RS256', 32, { sub: 'bob', roles: ['viewer'] }))];
    const requests = tokens.map((t, i) => checkBytes('GET', `/documents/d${i}`, t));
    await assertAllowed(target.address, requests[0]!);
    const admin = target.admin!;
    const fetchErrors = async () => metricSum(await scrape(admin), 'auth_jwks_fetch_errors_total', { issuer: issuer.issuer });
    let minKeys = Infinity;
    const keys = every(1000, async () => {
      minKeys = Math.min(minKeys, metricFrom(await scrape(admin), `auth_jwks_keys{issuer="${issuer.issuer}"}`) ?? 0);
    });

    const load = startNodeLoad({ address: target.address, path: AUTHORIZATION_CHECK_PATH, requests, expect: 'allow', mode: 'open', rate: o.rate, durationMs: o.beforeMs + o.downMs + o.afterMs });
    await sleep(o.beforeMs);
    const atDown = await fetchErrors();
    await issuer.down();
    await sleep(o.downMs);
    await issuer.up();
    const atUp = await fetchErrors();
    // One refresh interval (and a failed-fetch timeout) later, refreshes succeed again.
    await sleep(Math.min(o.afterMs - 1000, REFRESH_SECONDS * 1000 + 2000));
    const settled = await fetchErrors();
    const total = await load.done;
    keys.stop();
    const atEnd = await fetchErrors();

    const failures = [
      ...(total.errors ? [`${total.errors} Checks failed while the JWKS endpoint was down`] : []),
      ...(atUp - atDown === 0 ? ['no JWKS refresh failed during the outage: it was not exercised'] : []),
      ...(minKeys < 1 ? [`the issuer's usable keys dropped to ${minKeys}`] : []),
      ...(atEnd > settled ? [`JWKS refreshes kept failing after the endpoint came back (${atEnd - settled} more)`] : []),
    ];
    return {
      name: 'jwks-outage',
      lines: [
        `JWKS endpoint down for ${o.downMs / 1000} s (refresh every ${REFRESH_SECONDS} s, stale keys allowed for a day), Checks at ${o.rate}/s with 64 tokens of that issuer.`,
        describeLoad('Checks', total),
        `Failed JWKS refreshes during the outage: ${atUp - atDown}; after it: ${atEnd - settled}; fewest usable keys seen: ${minKeys}.`,
      ],
      failures,
      data: { load: total, refreshFailuresDuringOutage: atUp - atDown, refreshFailuresAfter: atEnd - settled, minKeys },
    };
  } finally {
    await target.stop();
    await issuer.close();
  }
}
