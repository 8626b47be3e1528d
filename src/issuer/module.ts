import type { Cache } from '../cache/index.js';
import type { Config } from '../config/index.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { Store } from '../store/index.js';
import { createDpopNonces, createDpopVerifier, type TrustedIssuer } from '../tokens/index.js';
import { createAuditWriter } from './audit.js';
import { ensureBuiltinClient } from './builtin_client.js';
import type { IssuerContext, IssuerSettings } from './context.js';
import { createFanOut } from './fanout.js';
import { createInteractions, type Interactions } from './interaction.js';
import { loadKek } from './kek.js';
import { rotateSigningKey } from './key_rotation.js';
import { createKeyring, type Keyring } from './keyring.js';
import { createDummyHash } from './passwords.js';
import { createRateLimiter, type RateLimiter } from './rate_limit.js';
import { createRevocationList } from './revocation_list.js';
import { createUpstreamProviders } from './upstream/registry.js';

export interface TokenModuleOptions {
  config: Readonly<Config>;
  store: Store;
  /** Shared short-lived state: the DPoP proof replay cache, rate limits and fan-out (memory in one process, Redis across replicas). */
  cache: Cache;
  clock: Clock;
  metrics: Metrics;
  logger: Logger;
}

export interface TokenModule {
  ctx: IssuerContext;
  keyring: Keyring;
  interactions: Interactions;
  /** Per-IP limit of login attempts (`/login`, `/login/mfa`, login pages). */
  limiter: RateLimiter;
  /** Per-IP limit of `/oauth2/authorize` (each request stores an interaction). */
  authorizeLimiter: RateLimiter;
  /** Algorithm of newly generated keys (what discovery advertises for ID tokens). */
  signingAlg: string;
  /** Fixes the issuer URL once the public listener is bound (when not configured). */
  setIssuer(url: string): void;
  /** The token module as an issuer the ext_authz verifier trusts in-process. */
  trustedIssuer(): TrustedIssuer;
  /** Re-reads keys and revocations from the store (SIGHUP, timer). */
  reload(): Promise<void>;
  /** One round of background upkeep: re-read keys and revocations, rotate when the schedule says so. */
  maintain(): Promise<void>;
  /** Subscribes to the other replicas' revocations and rotations; starts key reload / scheduled rotation / cleanup timers. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

function issuerDpop(o: TokenModuleOptions, kek: ReturnType<typeof loadKek>['kek']): IssuerContext['dpop'] {
  const d = o.config.dpop;
  if (!d.enabled) return undefined;
  // Derived from the KEK: replicas sharing it accept each other's nonces.
  const nonces = d.require_nonce ? createDpopNonces({ secret: kek.derive('dpop-nonce'), lifetimeSeconds: d.nonce_lifetime_seconds, clock: o.clock }) : undefined;
  return {
    verify: createDpopVerifier({ algorithms: d.algorithms, iatWindowSeconds: d.iat_window_seconds, maxProofBytes: d.max_proof_bytes, replay: o.cache, clock: o.clock, nonces }),
    nonces,
    algorithms: d.algorithms,
  };
}

export function issuerSettings(c: Readonly<Config>['token_module']): IssuerSettings {
  return {
    audience: c.audience,
    resources: c.resources,
    accessTokenTtl: c.access_token_ttl_seconds,
    idTokenTtl: c.id_token_ttl_seconds,
    codeTtl: c.authorization_code_ttl_seconds,
    refreshIdle: c.refresh_token_idle_seconds,
    refreshAbsolute: c.refresh_token_absolute_seconds,
    mfaTokenTtl: c.mfa_token_ttl_seconds,
    interactionTtl: c.interaction_ttl_seconds,
    lockout: { maxFailures: c.lockout.max_failures, baseSeconds: c.lockout.base_seconds, maxSeconds: c.lockout.max_seconds },
    loginPerMinute: c.rate_limit.login_per_minute,
    authorizePerMinute: c.rate_limit.authorize_per_minute,
  };
}

/** Builds the token module from config: KEK, keys (first one created if none), built-in client. */
export async function createTokenModule(o: TokenModuleOptions): Promise<TokenModule> {
  const tm = o.config.token_module;
  const { kek, generated } = loadKek({ value: tm.kek, file: tm.kek_file, generate: o.config.mode !== 'production' });
  if (generated) o.logger.warn({ kek_file: tm.kek_file }, 'generated a key-encryption key for secrets at rest (development only; set token_module.kek or PORTCULLIS_KEK in production)');
  const settings = issuerSettings(tm);
  const keyring = createKeyring({
    store: o.store,
    kek,
    clock: o.clock,
    alg: tm.signing_alg,
    prepublishMs: tm.key_rotation.prepublish_seconds * 1000,
    maxTokenLifetimeMs: Math.max(tm.access_token_ttl_seconds, tm.id_token_ttl_seconds) * 1000,
  });
  const createdKid = await keyring.init();
  const reportSigningKey = () => {
    const active = keyring.states().find((k) => k.state === 'active');
    if (active) o.metrics.signingKeyCreated.set(active.createdAt / 1000);
  };
  reportSigningKey();
  await ensureBuiltinClient(o.store, o.clock.now());
  const fanout = createFanOut({ cache: o.cache, metrics: o.metrics, logger: o.logger });
  // Replicas starting together on an empty store may each create a first key: announce ours, and
  // re-read once subscribed (start), so every replica knows every key before it must verify one.
  if (createdKid) await fanout.keysChanged(createdKid);
  const revoked = createRevocationList(o.store, o.clock, fanout.revoked);
  await revoked.reload();
  let issuer = tm.issuer?.replace(/\/$/, '');
  const ctx: IssuerContext = {
    issuer: () => {
      if (!issuer) throw new Error('token module issuer is not known before the public listener is bound');
      return issuer;
    },
    settings,
    store: o.store,
    kek,
    keyring,
    revoked,
    fanout,
    audit: createAuditWriter({ store: o.store, clock: o.clock, logger: o.logger, userKey: kek.derive('user-ref') }),
    clock: o.clock,
    metrics: o.metrics,
    logger: o.logger,
    dummyHash: await createDummyHash(),
    dpop: issuerDpop(o, kek),
    upstream: createUpstreamProviders(o.config.upstream_providers, { clock: o.clock, metrics: o.metrics, logger: o.logger, traced: o.config.observability.tracing.enabled }),
  };
  const refused = () => o.metrics.loginRateLimited.inc();
  const limiter = (name: string, perMinute: number) => createRateLimiter({ cache: o.cache, name, perMinute, clock: o.clock, metrics: o.metrics, logger: o.logger, onRefused: refused });
  const loginLimiter = limiter('login', settings.loginPerMinute);
  const timers: NodeJS.Timeout[] = [];
  let stopListening: (() => Promise<void>) | undefined;
  const reload = async () => {
    await keyring.reload();
    await revoked.reload();
    reportSigningKey();
  };
  const rotationMs = tm.key_rotation.interval_seconds * 1000;
  const maintain = async () => {
    await reload();
    if (keyring.rotationDue(rotationMs)) await rotateSigningKey(ctx, 'schedule');
    reportSigningKey();
  };
  return {
    ctx,
    keyring,
    interactions: createInteractions(ctx, loginLimiter),
    limiter: loginLimiter,
    authorizeLimiter: limiter('authorize', settings.authorizePerMinute),
    signingAlg: tm.signing_alg,
    setIssuer(url) {
      issuer ??= url.replace(/\/$/, '');
    },
    trustedIssuer: () => ({
      policy: { issuer: ctx.issuer(), audiences: [settings.audience, ...settings.resources], algorithms: [tm.signing_alg, 'ES256', 'EdDSA', 'RS256'].filter((a, i, all) => all.indexOf(a) === i), clock_skew_seconds: 30, required_typ: 'at+jwt', roles_claim: 'roles', scope_claim: 'scope' },
      keys: keyring.keySource,
      isRevoked: (jti: string) => revoked.has(jti),
    }),
    reload,
    maintain,
    async start() {
      stopListening = await fanout.listen({
        revoked: (jti) => revoked.learn(jti),
        keysChanged: async () => {
          await keyring.reload();
          reportSigningKey();
        },
        resync: reload,
      });
      // Whatever changed before this process listened (another replica's first key) is read now.
      await reload();
      const every = (ms: number, fn: () => Promise<unknown>) => {
        const t = setInterval(() => void fn().catch((err: unknown) => o.logger.error({ err }, 'token module background task failed')), ms);
        t.unref();
        timers.push(t);
      };
      every(Math.min(tm.key_rotation.reload_seconds * 1000, rotationMs > 0 ? rotationMs : Infinity), maintain);
      ctx.upstream.start();
      every(300_000, async () => {
        const before = o.clock.now() - 3600_000;
        await o.store.codes.deleteExpired(before);
        await o.store.challenges.deleteExpired(before);
      });
    },
    async stop() {
      for (const t of timers) clearInterval(t);
      ctx.upstream.stop();
      await stopListening?.().catch((err: unknown) => o.logger.warn({ err }, 'stopping the fan-out subscription failed'));
      stopListening = undefined;
    },
  };
}
