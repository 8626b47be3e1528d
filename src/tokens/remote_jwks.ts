import { createLocalJWKSet, type JSONWebKeySet, type JWSHeaderParameters } from 'jose';
import { LRUCache } from 'lru-cache';
import type { IssuerConfig } from '../config/index.js';
import type { Clock } from '../lib/clock.js';
import { PortcullisError, isPortcullisError } from '../lib/errors.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { inSpan } from '../telemetry/tracing.js';
import { FetchFailure, fetchJson } from './http_fetch.js';
import { filterJwks } from './jwks_document.js';
import type { KeySource, VerifyKey } from './key_source.js';
import { matchingKeys } from './match_keys.js';

interface KeySetEntry {
  set: ReturnType<typeof createLocalJWKSet>;
  jwks: JSONWebKeySet;
  fetchedAt: number;
  /** How long this response is fresh, from Cache-Control clamped to the configured bounds. */
  ttlMs: number;
}

export interface RemoteKeySourceOptions {
  clock: Clock;
  metrics: Metrics;
  logger: Logger;
  /** Wrap each key resolution in an `auth.oauth.fetch_jwks` span (only when tracing is on). */
  traced?: boolean;
}

const ENTRY = 'jwks';

/**
 * An issuer's remote JWKS, held in an lru-cache entry whose fetchMethod does the HTTP work:
 * concurrent misses share one fetch, a stale entry is served while it revalidates, and a failed
 * fetch keeps the last good keys (until `stale_seconds` past their freshness). An unknown kid
 * forces at most one refetch per cooldown. A Check never waits for a fetch longer than
 * `request_budget_ms`; the fetch itself continues in the background.
 */
export function createRemoteKeySource(issuer: IssuerConfig, { clock, metrics, logger, traced = false }: RemoteKeySourceOptions): KeySource {
  const cfg = issuer.jwks;
  const label = { issuer: issuer.issuer };
  let jwksUri = issuer.jwks_uri;
  let lastForcedAt = -Infinity;
  let timer: NodeJS.Timeout | undefined;

  const cache = new LRUCache<string, KeySetEntry>({
    max: 1,
    ttl: cfg.refresh_max_seconds * 1000,
    perf: { now: () => clock.now() },
    allowStale: true,
    noDeleteOnStaleGet: true,
    allowStaleOnFetchRejection: true,
    noDeleteOnFetchRejection: true,
    allowStaleOnFetchAbort: true,
    ignoreFetchAbort: true,
    fetchMethod: async (_key, _stale, { options }) => {
      const entry = await load();
      options.ttl = entry.ttlMs;
      return entry;
    },
  });

  async function load(): Promise<KeySetEntry> {
    const end = metrics.jwksFetchDuration.startTimer(label);
    try {
      const uri = jwksUri ?? (jwksUri = await discover());
      const fetched = await fetchJson(uri, { timeoutMs: cfg.fetch_timeout_ms, maxBytes: cfg.max_bytes });
      const { jwks, skipped } = filterJwks(fetched.body);
      if (skipped.length) logger.warn({ issuer: issuer.issuer, skipped }, 'JWKS keys skipped');
      if (jwks.keys.length === 0) throw new FetchFailure('invalid_document', 'JWKS holds no usable signing key');
      const maxAge = fetched.maxAgeSeconds ?? cfg.refresh_max_seconds;
      const ttlSeconds = Math.min(cfg.refresh_max_seconds, Math.max(cfg.refresh_min_seconds, maxAge));
      metrics.jwksKeys.set(label, jwks.keys.length);
      return { set: createLocalJWKSet(jwks), jwks, fetchedAt: clock.now(), ttlMs: ttlSeconds * 1000 };
    } catch (err) {
      const reason = err instanceof FetchFailure ? err.reason : 'network';
      metrics.jwksFetchErrors.inc({ ...label, reason });
      if (reason === 'too_large') metrics.limitExceeded.inc({ limit: 'jwks_document' });
      logger.warn({ issuer: issuer.issuer, reason, err: (err as Error).message }, 'JWKS fetch failed; keeping last good keys');
      throw err;
    } finally {
      end();
    }
  }

  async function discover(): Promise<string> {
    const url = `${issuer.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
    const { body } = await fetchJson(url, { timeoutMs: cfg.fetch_timeout_ms, maxBytes: cfg.max_bytes });
    const doc = body as { issuer?: unknown; jwks_uri?: unknown };
    if (doc?.issuer !== issuer.issuer) throw new FetchFailure('invalid_document', `discovery document of ${issuer.issuer} names issuer ${String(doc?.issuer).slice(0, 200)}`);
    if (typeof doc.jwks_uri !== 'string' || !/^https?:\/\//.test(doc.jwks_uri)) throw new FetchFailure('invalid_document', 'discovery document has no http(s) jwks_uri');
    return doc.jwks_uri;
  }

  /** The held entry if it is still within its stale window. */
  function usable(): KeySetEntry | undefined {
    const entry = cache.peek(ENTRY, { allowStale: true });
    if (!entry) return undefined;
    return clock.now() - entry.fetchedAt <= entry.ttlMs + cfg.stale_seconds * 1000 ? entry : undefined;
  }

  /** Starts (or joins) a fetch and waits for it at most the request budget. */
  async function fetchWithinBudget(force: boolean): Promise<KeySetEntry | undefined> {
    const pending = cache.fetch(ENTRY, { forceRefresh: force, allowStale: false }).catch(() => undefined);
    let budget: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((res) => {
      budget = setTimeout(() => res(undefined), cfg.request_budget_ms);
    });
    try {
      return await Promise.race([pending, timeout]);
    } finally {
      clearTimeout(budget);
    }
  }

  /** The keys to verify with; `waited` tells whether this request waited for a fetch. */
  async function current(waited: { fetched: boolean }): Promise<KeySetEntry> {
    const held = usable();
    if (held) {
      // Past freshness: revalidate in the background, answer with what we hold.
      if (clock.now() - held.fetchedAt > held.ttlMs) void cache.fetch(ENTRY).catch(() => undefined);
      return held;
    }
    waited.fetched = true;
    await fetchWithinBudget(false);
    const fresh = usable();
    if (!fresh) throw new PortcullisError('ERR_KEYS_UNAVAILABLE', `no keys available for issuer ${issuer.issuer}`);
    return fresh;
  }

  async function keysFor(header: JWSHeaderParameters, waited: { fetched: boolean }): Promise<VerifyKey[]> {
    const entry = await current(waited);
    try {
      return await matchingKeys(entry.set, header);
    } catch (err) {
      if (!isPortcullisError(err, 'ERR_TOKEN_KEY_NOT_FOUND')) throw err;
      const now = clock.now();
      if (now - lastForcedAt < cfg.cooldown_seconds * 1000) throw err;
      lastForcedAt = now;
      metrics.jwksUnknownKidRefetch.inc(label);
      waited.fetched = true;
      const refreshed = await fetchWithinBudget(true);
      if (!refreshed || refreshed === entry) throw err;
      return matchingKeys(refreshed.set, header);
    }
  }

  /** With tracing on: `auth.oauth.fetch_jwks` around the resolution, `auth.oauth.jwks_cached` false when it waited for the network. */
  const tracedKeysFor = (header: JWSHeaderParameters) =>
    inSpan('auth.oauth.fetch_jwks', { 'auth.token.issuer': issuer.issuer }, async (span) => {
      const waited = { fetched: false };
      try {
        return await keysFor(header, waited);
      } finally {
        span.setAttribute('auth.oauth.jwks_cached', !waited.fetched);
      }
    });

  return {
    keysFor: traced ? tracedKeysFor : (header) => keysFor(header, { fetched: false }),
    hasKeys: () => usable() !== undefined,
    async start() {
      if (timer) return;
      const tick = async () => {
        const entry = cache.peek(ENTRY, { allowStale: true });
        const due = !entry || clock.now() - entry.fetchedAt >= entry.ttlMs;
        if (due) await cache.fetch(ENTRY, { forceRefresh: true }).catch(() => undefined);
      };
      timer = setInterval(() => void tick(), Math.min(cfg.refresh_min_seconds * 1000, 30_000));
      timer.unref();
      await tick();
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
}
