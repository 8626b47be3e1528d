import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { systemClock } from '../lib/clock.js';
import { ANONYMOUS_ID, createPolicyEngine, loadPolicyBundle, matchRoute, PRINCIPAL_TYPE, type ActivePolicySet, type EntityJson } from '../policy/index.js';
import { parseRequestPath } from './request_path.js';
import { createLogger } from '../telemetry/logger.js';
import { createMetrics } from '../telemetry/metrics.js';
import { createLocalKeySource, createTokenVerifier, type TokenVerifier } from '../tokens/index.js';
import { toCedarRecord } from './cedar_values.js';
import { createDecider } from './decide.js';
import { principalEntitiesFor, requestEntities } from './entities.js';
import { loadPolicyTests, type PolicyTestCase } from './test_cases.js';
import type { AuthzInput } from './types.js';

const TEST_ISSUER = 'urn:portcullis:policy-tests';

export interface CaseOutcome {
  file: string;
  name: string;
  pass: boolean;
  expected: PolicyTestCase['expect'];
  actual: { decision: 'allow' | 'deny'; reasons: string[]; status: number; errors: string[] };
}

export interface PolicyTestReport {
  cases: CaseOutcome[];
  passed: number;
  failed: number;
  /** Policies that were never a determining policy of any case. */
  uncoveredPolicies: string[];
  /** Route templates (`METHOD path`) no HTTP case matched. */
  uncoveredRoutes: string[];
}

/**
 * Runs a folder's policy tests through the live pipeline: HTTP cases go through the same decider
 * as Envoy traffic (a token is minted from the case's claims and verified), Cedar cases through
 * the same entity building and policy slices.
 */
export async function runPolicyTests(dir: string): Promise<PolicyTestReport> {
  const bundle = loadPolicyBundle(dir);
  const cases = loadPolicyTests(dir);
  const active = createPolicyEngine({ decisionCacheSize: 0 }).install(bundle);
  const issuer = await createTestIssuer();
  const metrics = createMetrics();
  const decide = createDecider({ verifier: issuer.verifier, policies: () => active, clock: systemClock, metrics, logger: createLogger('silent') });

  const determining = new Set<string>();
  const routesHit = new Set<number>();
  const outcomes: CaseOutcome[] = [];
  for (const c of cases) {
    const actual = c.request ? await runHttpCase(c, decide, issuer, active, routesHit) : await runCedarCase(c, issuer, active);
    actual.reasons.forEach((r) => determining.add(r));
    const e = c.expect;
    const pass = e.decision === actual.decision && (e.status === undefined || e.status === actual.status) && (e.reasons === undefined || sameSet(e.reasons, actual.reasons));
    outcomes.push({ file: c.file, name: c.name, pass, expected: e, actual });
  }
  const passed = outcomes.filter((o) => o.pass).length;
  return {
    cases: outcomes,
    passed,
    failed: outcomes.length - passed,
    uncoveredPolicies: bundle.policies.map((p) => p.id).filter((id) => !determining.has(id)),
    uncoveredRoutes: bundle.routes.routes.filter((r) => !routesHit.has(r.index)).map((r) => `${r.methods === '*' ? '*' : [...r.methods].join('|')} ${r.template}`),
  };
}

async function runHttpCase(c: PolicyTestCase, decide: ReturnType<typeof createDecider>, issuer: TestIssuer, active: ActivePolicySet, routesHit: Set<number>): Promise<CaseOutcome['actual']> {
  const req = c.request!;
  const headers = new Map<string, string[]>(Object.entries(req.headers).map(([k, v]) => [k.toLowerCase(), [v]]));
  if ('claims' in c.principal) headers.set('authorization', [`Bearer ${await issuer.mint(c.principal.claims)}`]);
  const input: AuthzInput = { source: 'envoy', method: req.method, path: req.path, host: req.host, scheme: 'https', headers, sourceAddress: req.source_ip, peerPrincipal: '', requestId: `test:${c.name}`, contextExtensions: req.context_extensions };
  const parsed = parseRequestPath(req.path);
  const match = parsed.ok ? matchRoute(active.bundle.routes, req.method, parsed.segments) : undefined;
  if (match && match.index >= 0) routesHit.add(match.index);
  const d = await decide(input);
  return { decision: d.allow ? 'allow' : 'deny', reasons: [...d.reasons], status: d.status, errors: [...d.errors] };
}

async function runCedarCase(c: PolicyTestCase, issuer: TestIssuer, active: ActivePolicySet): Promise<CaseOutcome['actual']> {
  const q = c.cedar!;
  let principal: { type: string; id: string };
  let entities: EntityJson[];
  let cacheKey: string | undefined;
  if ('entity' in c.principal) {
    const e = c.principal.entity;
    principal = { type: e.type, id: e.id };
    const parents = e.parents.flatMap((p) => active.bundle.entities.withAncestors(p.type, p.id));
    const self: EntityJson = { uid: principal, attrs: toCedarRecord(e.attrs), parents: e.parents };
    const resource = active.bundle.entities.withAncestors(q.resource.type, q.resource.id);
    entities = dedupe([self, ...parents, ...resource]);
  } else {
    const verified = 'claims' in c.principal ? await issuer.verifier.verify(await issuer.mint(c.principal.claims)) : undefined;
    principal = { type: PRINCIPAL_TYPE, id: verified?.subject ?? ANONYMOUS_ID };
    const who = principalEntitiesFor(verified, active);
    entities = requestEntities(who, q.resource.type, q.resource.id, active);
    cacheKey = who.cacheKey;
  }
  const r = active.evaluate({ principal, action: q.action, resource: q.resource, context: toCedarRecord(q.context), entities, cacheKey });
  return { decision: r.allow ? 'allow' : 'deny', reasons: [...r.reasons], status: r.allow ? 200 : 403, errors: [...r.errors] };
}

interface TestIssuer {
  verifier: TokenVerifier;
  mint(claims: Record<string, unknown>): Promise<string>;
}

async function createTestIssuer(): Promise<TestIssuer> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'policy-tests', alg: 'ES256', use: 'sig' };
  const verifier = createTokenVerifier({
    issuers: [{ policy: { issuer: TEST_ISSUER, audiences: [], algorithms: ['ES256'], clock_skew_seconds: 0, roles_claim: 'roles', scope_claim: 'scope' }, keys: createLocalKeySource({ keys: [jwk] }) }],
    clock: systemClock,
    metrics: createMetrics(),
    cacheMaxEntries: 0,
  });
  return {
    verifier,
    mint: (claims) => new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'policy-tests' }).setIssuer(TEST_ISSUER).setIssuedAt().setExpirationTime('1h').sign(privateKey),
  };
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}

function dedupe(list: EntityJson[]): EntityJson[] {
  const seen = new Set<string>();
  return list.filter((e) => {
    const u = '__entity' in e.uid ? e.uid.__entity : e.uid;
    const k = `${u.type}\u0000${u.id}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

