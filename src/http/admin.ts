import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import type { WorkerInfo, WorkerPool } from '../cluster/pool.js';
import type { MetricsSource } from '../telemetry/metrics.js';
import { isPortcullisError } from '../lib/errors.js';
import type { PolicyRuntime } from '../policy/index.js';
import type { Logger } from '../telemetry/logger.js';
import { createAdminKeyCheck } from './admin_auth.js';
import { parseAuditQuery, queryAudit } from '../issuer/audit_query.js';
import { rotateSigningKey } from '../issuer/key_rotation.js';
import type { TokenModule } from '../issuer/module.js';
import { registerUpstreamAdmin } from './admin_upstream.js';

export interface Liveness {
  ok: boolean;
  checks: Record<string, boolean>;
}

export interface Readiness {
  ready: boolean;
  checks: Record<string, boolean | Record<string, boolean>>;
}

export interface AdminServerOptions {
  /** The catalog's registry when `/metrics` serves Prometheus text; absent when metrics go elsewhere (or nowhere). */
  registry: MetricsSource | undefined;
  /** `observability.metrics.provider`, named in the 404 of `/metrics` when it is not served. */
  metricsProvider?: string;
  policies: PolicyRuntime;
  readiness: () => Promise<Readiness>;
  /** Process liveness: 503 when a dependency the process cannot work without (the store) is gone. */
  liveness: () => Promise<Liveness>;
  apiKey: string | undefined;
  logger: Logger;
  /** The token module, when enabled: `/admin/keys`, `/admin/keys/rotate`, `/admin/audit`. */
  tokens?: TokenModule | undefined;
  /** The cluster workers serving gRPC (`workers` > 1): `/admin/workers`, and policy reloads wait for them. */
  workers?: { info(): WorkerInfo[]; lastReload(): ReturnType<WorkerPool['reloadPolicies']> | undefined } | undefined;
}

/**
 * The admin listener: `/metrics` (no credentials, so scrapers need none), `/health`, `/ready`,
 * and `/admin/*` behind the admin API key. Errors are JSON and never expose internals.
 */
export function createAdminServer({ registry, metricsProvider = 'none', policies, readiness, liveness, apiKey, logger, tokens, workers }: AdminServerOptions): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 64 * 1024 });
  const keyMatches = createAdminKeyCheck(apiKey);

  app.get('/metrics', async (_req, reply) =>
    registry
      ? reply.type(registry.contentType).send(await registry.metrics())
      : reply.code(404).send({ error: 'not_found', detail: `metrics are not served for scraping: observability.metrics.provider is ${metricsProvider}` }),
  );
  app.get('/health', healthRoute(liveness));
  app.get('/ready', async (_req, reply) => {
    const r = await readiness();
    return reply.code(r.ready ? 200 : 503).send({ status: r.ready ? 'ready' : 'not_ready', checks: r.checks });
  });

  app.register(async (admin) => {
    admin.addHook('onRequest', async (req, reply) => {
      if (!keyMatches(req.headers.authorization)) {
        return reply.code(401).header('www-authenticate', 'Bearer realm="portcullis-admin"').send({ error: 'unauthorized' });
      }
    });
    admin.get('/admin/policies', async () => {
      const active = policies.current();
      const { loadedAt, lastFailure } = policies.status();
      if (!active) return { loaded: false, last_failure: lastFailure };
      const { bundle } = active;
      return {
        loaded: true,
        revision: bundle.revision,
        loaded_at: loadedAt,
        last_failure: lastFailure,
        generation: active.generation,
        dir: bundle.dir,
        policies: bundle.policies.map((p) => ({ id: p.id, file: p.file, position: p.position, effect: p.scope.effect })),
        slices: [...bundle.slices].map(([key, s]) => ({ key, policies: s.ids.length })),
      };
    });
    admin.post('/admin/policies/reload', async (_req, reply) => {
      const result = policies.reload();
      logger.info({ admin_action: 'policies.reload', ok: result.ok }, 'admin action');
      if (!result.ok) return reply.code(422).send({ error: 'policy_reload_failed', detail: result.error });
      // With cluster workers the answer waits until each has loaded the set (or failed to).
      const answers = await workers?.lastReload();
      return { status: 'reloaded', policies: result.policies, generation: policies.current()?.generation, revision: policies.current()?.bundle.revision, ...(answers ? { workers: answers } : {}) };
    });
    if (workers) {
      admin.get('/admin/workers', async () => ({
        workers: workers.info().map((w) => ({ slot: w.slot, pid: w.pid, state: w.state, started_at: w.startedAt, restarts: w.restarts })),
      }));
    }
    if (tokens) registerTokenAdmin(admin, tokens);
    if (tokens?.ctx.upstream.list.length) registerUpstreamAdmin(admin, tokens);
  });

  app.setNotFoundHandler((_req, reply) => reply.code(404).send({ error: 'not_found' }));
  app.setErrorHandler((err: { statusCode?: number }, _req, reply) => {
    if (isPortcullisError(err, 'ERR_STORE_UNAVAILABLE')) {
      logger.warn({ err }, 'admin request failed: store unavailable');
      return reply.code(503).header('retry-after', '1').send({ error: 'store_unavailable' });
    }
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) logger.error({ err }, 'admin request failed');
    return reply.code(status).send({ error: status === 500 ? 'internal_error' : 'bad_request' });
  });
  return app;
}

function registerTokenAdmin(admin: FastifyInstance, tokens: TokenModule): void {
  const { ctx } = tokens;
  const keyView = () => ctx.keyring.states().map((k) => ({ ...k, createdAt: iso(k.createdAt), activatesAt: iso(k.activatesAt), retiresAt: k.retiresAt === null ? null : iso(k.retiresAt) }));
  admin.get('/admin/keys', async () => ({ keys: keyView() }));
  admin.post('/admin/keys/rotate', async (req) => {
    const query = req.query as Record<string, unknown>;
    const key = await rotateSigningKey(ctx, 'admin', query.immediate === 'true', query.revoke_previous === 'true');
    return { rotated: key.kid, activates_at: iso(key.activatesAt), keys: keyView() };
  });
  admin.get('/admin/audit', async (req, reply) => {
    const parsed = parseAuditQuery(ctx, req.query);
    if (!parsed.ok) return reply.code(400).send({ error: 'bad_request', detail: parsed.error });
    return queryAudit(ctx, parsed.query);
  });
}

const iso = (ms: number) => new Date(ms).toISOString();

/** `GET /health`: 200 `{status: ok}` while the process and its store work, 503 with the failing check otherwise. */
export function healthRoute(liveness: () => Promise<Liveness>) {
  return async (_req: unknown, reply: FastifyReply) => {
    const l = await liveness();
    return reply.code(l.ok ? 200 : 503).send(l.ok ? { status: 'ok' } : { status: 'unhealthy', checks: l.checks });
  };
}
