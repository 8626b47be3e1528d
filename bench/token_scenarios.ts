import type { Request } from 'autocannon';
import { parseConfig } from '../src/config/index.js';
import { BUILTIN_LOGIN_CLIENT } from '../src/issuer/builtin_client.js';
import { addClient } from '../src/issuer/clients.js';
import { startFamily } from '../src/issuer/refresh.js';
import type { IssuerContext } from '../src/issuer/context.js';
import { createTokenModule } from '../src/issuer/module.js';
import { hashPassword, verifyPassword } from '../src/issuer/passwords.js';
import { addUser } from '../src/issuer/users.js';
import { systemClock } from '../src/lib/clock.js';
import { createMemoryCache } from '../src/cache/index.js';
import { openSqliteStore } from '../src/store/index.js';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { createLogger } from '../src/telemetry/logger.js';
import { createMetrics } from '../src/telemetry/metrics.js';
import { latencyHistogram, summarize } from './lib/latency.js';
import type { LoadResult } from './lib/load_grpc.js';
import { mainThreadCpuSeconds } from './lib/process_stats.js';
import { startOidcProviderPeer, startPortcullis, type Target } from './lib/target.js';
import type { Scenario } from './scenarios.js';

const EXAMPLE_POLICIES = new URL('../policies', import.meta.url).pathname;
const PASSWORD = 'bench-password-0123';
const FORM = 'application/x-www-form-urlencoded';

/** The token module with its per-IP login limit off (the load comes from one address). */
const tokenConfig = () => `policies:\n  dir: ${EXAMPLE_POLICIES}\ndev_issuer:\n  enabled: false\ntoken_module:\n  rate_limit:\n    login_per_minute: 0\n`;

/** Opens the running target's store from the bench process (SQLite WAL allows both) to add a user or client (soak and chaos use it too). */
export async function withStore<T>(target: Target, fn: (ctx: IssuerContext) => Promise<T>): Promise<T> {
  const config = parseConfig({ dev_issuer: { enabled: false }, store: { sqlite_file: target.sqliteFile! }, token_module: { kek: target.kek! } });
  const store = openSqliteStore({ file: target.sqliteFile! });
  try {
    const tokens = await createTokenModule({ config, store, cache: createMemoryCache(), clock: systemClock, metrics: createMetrics(), logger: createLogger('silent') });
    tokens.setIssuer(`http://${target.http}`);
    return await fn(tokens.ctx);
  } finally {
    await store.close();
  }
}

async function post(url: string, body: string, headers: Record<string, string>): Promise<Record<string, unknown>> {
  const res = await fetch(url, { method: 'POST', headers, body });
  const json = (await res.json()) as Record<string, unknown>;
  if (res.status !== 200) throw new Error(`${url} answered ${res.status}: ${JSON.stringify(json)}`);
  return json;
}

const login = (target: Target) => post(`http://${target.http}/login`, JSON.stringify({ username: 'bench-user-0', password: PASSWORD }), { 'content-type': 'application/json' });
const LOGIN_CONNECTIONS = 8;
/** Refresh tokens minted per second of warm-up and phase: ~1.5 x the most one process rotated here (~2k/s). */
const REFRESH_POOL_RPS = 3000;

/** Whether an optional peer package is installed (a missing peer is reported, not an error). */
function installed(name: string): boolean {
  try {
    createRequire(import.meta.url).resolve(name);
    return true;
  } catch {
    return false;
  }
}

/** The node-oidc-provider peer is installed (a dev dependency). */
const OIDC_PROVIDER = installed('oidc-provider');

export const TOKEN_SCENARIOS: Scenario[] = [
  {
    name: 'token-client-credentials',
    description: 'POST /oauth2/token client_credentials (client_secret_basic): client lookup, SHA-256 secret check, ES256 signing, audit row',
    phases: 'max',
    variants: [
      {
        name: 'basic',
        async start() {
          const target = await startPortcullis(tokenConfig);
          const { secret } = await withStore(target, (ctx) => addClient(ctx, { clientId: 'bench', type: 'confidential', grantTypes: ['client_credentials'], redirectUris: [], scopes: ['read'], roles: ['service'], firstParty: false }));
          const request: Request = { method: 'POST', path: '/oauth2/token', headers: { 'content-type': FORM, authorization: `Basic ${Buffer.from(`bench:${secret}`).toString('base64')}` }, body: 'grant_type=client_credentials' };
          const verify = async () => void (await post(`http://${target.http}/oauth2/token`, request.body as string, request.headers as Record<string, string>));
          return { target, requests: [], http: { url: `http://${target.http}`, requests: [request] }, verify };
        },
      },
      // Peer: node-oidc-provider (dev dependency), the same grant issuing ES256 JWT access tokens.
      ...(OIDC_PROVIDER
        ? [
            {
              name: 'oidc-provider',
              async start() {
                const secret = randomBytes(24).toString('base64url');
                const target = await startOidcProviderPeer(secret);
                const request: Request = { method: 'POST', path: '/token', headers: { 'content-type': FORM, authorization: `Basic ${Buffer.from(`bench:${secret}`).toString('base64')}` }, body: 'grant_type=client_credentials&scope=read' };
                const verify = async () => {
                  const answer = await post(`http://${target.http}/token`, request.body as string, request.headers as Record<string, string>);
                  if (typeof answer.access_token !== 'string' || answer.access_token.split('.').length !== 3) throw new Error(`oidc-provider did not issue a JWT access token: ${JSON.stringify(answer)}`);
                };
                return { target, requests: [], http: { url: `http://${target.http}`, requests: [request] }, verify, note: 'in-memory adapter (nothing durable, no audit row)' };
              },
            },
          ]
        : []),
    ],
    ...(OIDC_PROVIDER ? {} : { missing: ['node-oidc-provider: npm package oidc-provider (a dev dependency) is not installed'] }),
  },
  {
    name: 'token-refresh',
    description: 'POST /oauth2/token refresh_token: compare-and-set consume of the presented token, a new refresh token, a new access token (one family per request)',
    phases: 'max',
    variants: [
      {
        name: 'rotate',
        async start({ warmupMs, phaseMs }) {
          const target = await startPortcullis(tokenConfig);
          // Each request presents a fresh refresh token of its own family: tokens are minted straight into
          // the store beforehand (a login per token would take minutes), enough for the profile's warm-up and
          // its one (max) phase, and never fewer than 10k, for a machine that rotates faster than this one.
          const poolSize = Math.max(10_000, Math.ceil((REFRESH_POOL_RPS * (warmupMs + phaseMs)) / 1000) + 100);
          const pool = await withStore(target, async (ctx) => {
            const user = await addUser(ctx, { username: 'bench-user', password: PASSWORD, roles: ['viewer'] });
            const client = (await ctx.store.clients.byId(BUILTIN_LOGIN_CLIENT))!;
            const tokens: string[] = [];
            for (let i = 0; i < poolSize; i++) tokens.push((await startFamily(ctx, { client, userId: user.id, scope: 'openid profile', resource: null, amr: ['pwd'], authTime: Math.floor(Date.now() / 1000) })).token);
            return tokens;
          });
          const request: Request = {
            method: 'POST',
            path: '/oauth2/token',
            headers: { 'content-type': FORM },
            // Bounded: an exhausted pool repeats the last token, which shows up as errors, never as silent success.
            setupRequest: (req) => ({ ...req, body: `grant_type=refresh_token&client_id=${BUILTIN_LOGIN_CLIENT}&refresh_token=${pool.length > 1 ? pool.pop() : pool[0]}` }),
          };
          const verify = async () => void (await post(`http://${target.http}/oauth2/token`, `grant_type=refresh_token&client_id=${BUILTIN_LOGIN_CLIENT}&refresh_token=${pool.pop()}`, { 'content-type': FORM }));
          return { target, requests: [], http: { url: `http://${target.http}`, requests: [request] }, verify };
        },
      },
    ],
  },
  {
    name: 'login',
    description: "POST /login with the right password (argon2id m=19456 KiB t=2 p=1), 8 in flight; 'argon2id-raw' is the bare hash verification in the bench process (the server's verifyPassword), the ceiling for login/s",
    phases: 'max',
    variants: [
      {
        name: 'password',
        async start() {
          const target = await startPortcullis(tokenConfig);
          // One user per connection: concurrent logins of one account beyond lockout.max_failures are
          // refused while in flight (each attempt is counted before its verification).
          await withStore(target, async (ctx) => {
            for (let i = 0; i < LOGIN_CONNECTIONS; i++) await addUser(ctx, { username: `bench-user-${i}`, password: PASSWORD, roles: ['viewer'] });
          });
          let next = 0;
          const request: Request = {
            method: 'POST',
            path: '/login',
            headers: { 'content-type': 'application/json' },
            setupRequest: (req, context) => {
              const c = context as { user?: string };
              c.user ??= `bench-user-${next++ % LOGIN_CONNECTIONS}`;
              return { ...req, body: JSON.stringify({ username: c.user, password: PASSWORD }) };
            },
          };
          return { target, requests: [], http: { url: `http://${target.http}`, requests: [request], connections: LOGIN_CONNECTIONS }, verify: async () => void (await login(target)) };
        },
      },
      {
        name: 'argon2id-raw',
        async start() {
          const stored = await hashPassword(PASSWORD);
          return { target: benchProcess(), requests: [], measure: (durationMs: number) => argon2Load(stored, LOGIN_CONNECTIONS, durationMs) };
        },
      },
    ],
  },
];

/** The bench process itself as a target (for in-process measurements). */
function benchProcess(): Target {
  return {
    name: 'bench-process',
    address: '',
    pid: process.pid,
    dir: '',
    cpuSeconds: () => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1e6;
    },
    loopCpuSeconds: () => mainThreadCpuSeconds(process.pid),
    peakRssMb: () => Math.round(process.resourceUsage().maxRSS / 102.4) / 10,
    stop: async () => {},
  };
}

/**
 * `concurrency` loops of argon2id verifications for `durationMs` (bounded by time), through the
 * server's own verifyPassword (the same parameters and binding), without HTTP, store or tokens.
 */
async function argon2Load(stored: string, concurrency: number, durationMs: number): Promise<LoadResult> {
  const histogram = latencyHistogram();
  const start = performance.now();
  const end = start + durationMs;
  let completed = 0;
  let errors = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const t0 = performance.now();
        if (await verifyPassword(stored, PASSWORD)) completed++;
        else errors++;
        histogram.recordValue(Math.round((performance.now() - t0) * 1000));
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  return { requests: completed, errors, errorSamples: [], rate: Math.round(completed / elapsed), ...summarize(histogram) };
}
