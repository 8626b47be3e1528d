import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { systemClock } from '../src/lib/clock.js';
import { loadDevIssuer } from '../src/tokens/index.js';
import { tenantPolicyFiles, tenantRequest } from './lib/policy_sets.js';
import { checkBytes, startBenchIssuer } from './lib/requests.js';
import { createBenchDpopKey } from './lib/dpop_requests.js';
import { startFloor, startPortcullis, type Target } from './lib/target.js';
import { create, toBinary } from '@bufbuild/protobuf';
import { createAppClient } from '../src/appapi/client.js';
import { BatchCheckRequestSchema, Decision } from '../src/gen/portcullis/authz/v1/authorizer_pb.js';
import { TOKEN_SCENARIOS } from './token_scenarios.js';
import { CERBOS_CHECK_PATH, cerbosBinary, cerbosCheckResourcesBytes, startCerbos, verifyCerbosAllows } from './peers/cerbos.js';

const EXAMPLE_POLICIES = new URL('../policies', import.meta.url).pathname;
/** The Cerbos peer's binary when installed (an optional dependency). */
const CERBOS = cerbosBinary();

/**
 * Which phases a variant runs: the profile's open-loop rates and max; its first rate and max; max only;
 * or 'rates-in-full': the rate sweep in the full profile, the first rate and max in the others (for
 * variants whose higher rates are past what one process answers on a small machine, where an open
 * loop measures only how long its queue takes to drain).
 */
export type PhaseKind = 'rates' | 'rates-in-full' | 'max' | 'open-1000+max';

export interface VariantRun {
  target: Target;
  /** gRPC request pool (empty for HTTP and in-process variants). */
  requests: Uint8Array[];
  /** An HTTP scenario (autocannon): base URL, request(s), connections in the max phase (default: the profile's). */
  http?: { url: string; requests: import('autocannon').Request[]; connections?: number };
  /** An in-process measurement instead of a load against a server. */
  measure?: (durationMs: number) => Promise<import('./lib/load_grpc.js').LoadResult>;
  /** gRPC method; default Envoy's Authorization/Check. */
  path?: string;
  /** HTTP/2 connections the gRPC load is spread over (default 1). */
  connections?: number;
  /**
   * Requests that may be sent once each (DPoP proofs): a fresh pool of `count` is built before
   * every phase and replaces `requests`; the Node generator never sends one twice.
   */
  singleUse?: (count: number) => Uint8Array[];
  /** Single-use pools of closed-loop phases are sized for this many requests per second (default 8000, above any rate one process reaches here). */
  singleUseCeilingRps?: number;
  /** Checks the first request once through a real gRPC client; default: an Envoy Check that must be allowed. */
  verify?: () => Promise<void>;
  /** An Envoy scenario whose requests are denied with this HTTP status (verified once; the load then accepts any answer). */
  denied?: 401 | 403;
  note?: string;
  cleanup?: () => Promise<void>;
}

export interface Variant {
  name: string;
  /** Phases of this variant when they differ from its scenario's. */
  phases?: PhaseKind;
  /** A point on a curve that no budget reads: run by the full (and smoke) profile, left out of quick. */
  fullOnly?: boolean;
  /** This variant's warm-up and the profile's phase length, for variants that prepare requests ahead (single-use pools). */
  start(timing: { warmupMs: number; phaseMs: number }): Promise<VariantRun>;
}

export interface Scenario {
  name: string;
  description: string;
  phases: PhaseKind;
  variants: Variant[];
  /** Peers this scenario measures that are not installed here, and how to get them: named in the run's notes (their budgets are skipped). */
  missing?: string[];
}

/** A note per peer of these scenarios that is not installed here (the run reports them; their budgets are skipped). */
export function missingPeerNotes(scenarios: readonly Pick<Scenario, 'name' | 'missing'>[]): string[] {
  return scenarios.flatMap((s) => (s.missing ?? []).map((m) => `${s.name}: peer not measured: ${m}`));
}

/** Bench config; `decisionCache: false` makes every request reach the engine (what slicing and entity size cost). */
const devConfig = (dir: string, policiesDir = EXAMPLE_POLICIES, extra = '', decisionCache = true) =>
  `policies:\n  dir: ${policiesDir}\n  decision_cache_size: ${decisionCache ? 10000 : 0}\ndev_issuer:\n  key_file: ${join(dir, 'dev-key.json')}\n${extra}`;

async function devToken(target: Target, sub: string, roles: string[], extra?: Record<string, unknown>): Promise<string> {
  const dev = await loadDevIssuer({ issuer: 'urn:portcullis:dev', audience: 'portcullis', keyFile: join(target.dir, 'dev-key.json'), clock: systemClock });
  return dev.mint({ sub, roles, ttlSeconds: 3600, ...(extra ? { extra } : {}) });
}

export const SCENARIOS: Scenario[] = [
  {
    name: 'floor',
    description: 'no-op ext_authz server on grpc-js with the project protos: decode, answer OK',
    phases: 'rates',
    variants: [{ name: 'noop', start: async () => ({ target: await startFloor(), requests: [checkBytes('GET', '/documents/d1', 'x.y.z')] }) }],
  },
  {
    name: 'check',
    description: 'Envoy Check, example policies, one valid cached token (viewer reading an owned document); "uncached" turns the decision cache off',
    phases: 'rates',
    variants: [true, false].map((decisionCache) => ({
      name: decisionCache ? 'example' : 'uncached',
      ...(decisionCache ? {} : { phases: 'rates-in-full' as const }),
      async start() {
        const target = await startPortcullis((dir) => devConfig(dir, EXAMPLE_POLICIES, '', decisionCache));
        return { target, requests: [checkBytes('GET', '/documents/d1', await devToken(target, 'alice', ['viewer']))] };
      },
    })),
  },
  {
    name: 'check-workers',
    description: 'check/example over 4 HTTP/2 connections (as an Envoy with 4 worker threads opens them), served by 1 process or by 2 cluster workers (workers: 2)',
    phases: 'open-1000+max',
    variants: [1, 2].map((workers) => ({
      name: `${workers}-worker${workers === 1 ? '' : 's'}`,
      async start() {
        const target = await startPortcullis((dir) => devConfig(dir, EXAMPLE_POLICIES, `workers: ${workers}\n`));
        return { target, connections: 4, requests: [checkBytes('GET', '/documents/d1', await devToken(target, 'alice', ['viewer']))], note: 'CPU and peak RSS are summed over the primary and its workers' };
      },
    })),
  },
  {
    name: 'check-traced',
    description: 'check/example with tracing on: 10 % of traces sampled, spans exported over OTLP/HTTP to a sink in the bench process (tracing off is check/example itself)',
    phases: 'rates-in-full',
    variants: [
      {
        name: 'sample-10pct',
        async start() {
          const sink = await startOtlpSink();
          const extra = `observability:\n  tracing:\n    enabled: true\n    endpoint: ${sink.url}\n    sample_rate: 0.1\n    export_interval_ms: 1000\n`;
          const target = await startPortcullis((dir) => devConfig(dir, EXAMPLE_POLICIES, extra));
          return { target, requests: [checkBytes('GET', '/documents/d1', await devToken(target, 'alice', ['viewer']))], cleanup: sink.close, note: 'OTLP export in batches of 64 spans, or every second' };
        },
      },
    ],
  },
  {
    name: 'check-policies',
    description: 'tenant-style generated policy sets, decision cache off; "unsliced" writes the same rules so no slicing applies',
    phases: 'open-1000+max',
    variants: [
      { ...policyVariant('100', 100, true), fullOnly: true },
      policyVariant('1000', 1000, true),
      policyVariant('1000-unsliced', 1000, false),
    ],
  },
  {
    name: 'check-cold',
    description: 'token cache off: the signature is verified on every request',
    phases: 'max',
    variants: (['ES256', 'RS256'] as const).map((alg) => ({
      name: alg.toLowerCase(),
      async start() {
        const issuer = await startBenchIssuer();
        const extra = `token_cache:\n  max_entries: 0\nissuers:\n  - issuer: ${issuer.issuer}\n    jwks_uri: ${issuer.jwksUri}\n    audiences: [bench]\n`;
        const target = await startPortcullis((dir) => devConfig(dir, EXAMPLE_POLICIES, extra));
        const [token] = await issuer.mint(alg, 1, { sub: 'alice', roles: ['viewer'] });
        return { target, requests: [checkBytes('GET', '/documents/d1', token!)], cleanup: () => issuer.close() };
      },
    })),
  },
  {
    name: 'check-deny',
    description: 'denied Checks, each logged at info: "garbage-token" carries a token that is not a JWS at all (a flood of junk credentials), "forbidden" a valid cached token the policies refuse (a viewer deleting a document)',
    phases: 'max',
    variants: [
      {
        name: 'garbage-token',
        async start() {
          const target = await startPortcullis((dir) => devConfig(dir));
          return { target, requests: [checkBytes('GET', '/documents/d1', 'not.a.token')], denied: 401 as const };
        },
      },
      {
        name: 'forbidden',
        async start() {
          const target = await startPortcullis((dir) => devConfig(dir));
          return { target, requests: [checkBytes('DELETE', '/documents/d1', await devToken(target, 'alice', ['viewer']))], denied: 403 as const };
        },
      },
    ],
  },
  {
    name: 'check-dpop',
    description: 'check/example with a DPoP-bound token: a fresh ES256 proof per request (signature, htm/htu/iat/ath/jkt checks, jti replay cache); requests are single-use, so the Node generator runs it',
    // 1000 req/s and max in every profile: single-use proofs need the Node generator, which counts the
    // requests past its in-flight bound as errors, so an open loop above what one process verifies
    // (~2k proofs/s on 2 cores) fails the run instead of measuring a queue (the full profile's 5000/s
    // did: 21292 errors on 2026-12-03).
    phases: 'open-1000+max',
    variants: [
      {
        name: 'es256',
        async start() {
          const target = await startPortcullis((dir) => devConfig(dir));
          const key = await createBenchDpopKey();
          const token = await devToken(target, 'alice', ['viewer'], { cnf: { jkt: key.jkt } });
          const singleUse = (count: number) => key.checkPool(token, 'GET', '/documents/d1', count);
          // A proof costs the bench ~0.1 ms to sign: pools sized for twice the ~2k req/s one process verifies here.
          return { target, requests: singleUse(1), singleUse, singleUseCeilingRps: 4000, note: 'one fresh proof per request' };
        },
      },
    ],
  },
  {
    name: 'cerbos',
    description: 'peer: Cerbos PDP gRPC CheckResources for the same decision (all cores, and GOMAXPROCS=1 like one Node process); skipped when @cerbos/cerbos-linux-x64 is not installed',
    // check/example's rates in the full profile (the quick one keeps its first rate and max for time).
    phases: 'rates-in-full',
    variants: CERBOS
      ? [undefined, 1].map((maxProcs) => ({
          name: maxProcs ? '1proc' : 'default',
          // One process against one process: informative, and what no budget reads (the budget is against Cerbos on every core).
          // On one core it answers ~4.4k/s, so the full sweep's 5000 req/s would measure a queue draining.
          ...(maxProcs ? { fullOnly: true, phases: 'open-1000+max' as const } : {}),
          async start() {
            const target = await startCerbos(maxProcs ? { maxProcs } : {});
            return { target, requests: [cerbosCheckResourcesBytes()], path: CERBOS_CHECK_PATH, verify: () => verifyCerbosAllows(target.address) };
          },
        }))
      : [],
    ...(CERBOS ? {} : { missing: [`Cerbos: the PDP binary is not installed (npm optional dependency @cerbos/cerbos-linux-x64, Linux x64 only)`] }),
  },
  {
    name: 'app-batch',
    description: 'app API BatchCheck: one token, 20 documents (read, owner attribute per document), decision cache on; one request = 20 decisions (max throughput only: 1000 req/s would be 20k decisions/s)',
    phases: 'max',
    variants: [
      {
        name: '20-docs',
        async start() {
          const target = await startPortcullis((dir) => devConfig(dir));
          const token = await devToken(target, 'alice', ['viewer']);
          const request = create(BatchCheckRequestSchema, {
            principal: { kind: { case: 'token', value: token } },
            items: Array.from({ length: 20 }, (_, i) => ({ action: 'read', resource: { type: 'Document', id: `bench-${i}`, attributes: { owner: { __entity: { type: 'User', id: i % 2 ? 'alice' : 'bob' } } } } })),
          });
          const verify = async () => {
            const client = createAppClient(target.address);
            try {
              const res = await client.batchCheck(request);
              if (res.results.length !== 20 || res.results.some((r) => r.decision === Decision.UNSPECIFIED || r.errors.length)) throw new Error(`unexpected BatchCheck answer: ${JSON.stringify(res.results.map((r) => r.decision))}`);
            } finally {
              client.close();
            }
          };
          return { target, requests: [toBinary(BatchCheckRequestSchema, request)], path: '/portcullis.authz.v1.Authorizer/BatchCheck', verify, note: '20 decisions per request' };
        },
      },
    ],
  },
  ...TOKEN_SCENARIOS,
];

/** An OTLP/HTTP endpoint that accepts and drops spans (the bench measures the exporting side). */
async function startOtlpSink(): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

function policyVariant(name: string, count: number, sliced: boolean): Variant {
  return {
    name,
    // Unsliced, one process does ~200 decisions/s: an open loop at 1000/s would only measure a queue
    // that takes five times the phase to drain.
    ...(sliced ? {} : { phases: 'max' as const }),
    async start() {
      const target = await startPortcullis((dir) => {
        const policies = join(dir, 'policies');
        mkdirSync(policies);
        for (const [file, text] of Object.entries(tenantPolicyFiles(count, sliced))) writeFileSync(join(policies, file), text);
        return devConfig(dir, policies, '', false);
      });
      const { role, path } = tenantRequest(count);
      return { target, requests: [checkBytes('GET', path, await devToken(target, 'tenant-user', [role]))], note: `${count} policies` };
    },
  };
}
