import type { Cache } from '../cache/index.js';
import type { Config } from '../config/index.js';
import type { GrpcListener } from '../grpc/server.js';
import type { TokenModule } from '../issuer/module.js';
import type { PolicyRuntime } from '../policy/index.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { startWorkerPool, type WorkerPool } from './pool.js';

export interface ClusterServing {
  pool: WorkerPool;
  grpc: Pick<GrpcListener, 'port' | 'close'>;
  /** The workers' answers to the latest policy reload (the admin reload waits for them). */
  lastReload(): ReturnType<WorkerPool['reloadPolicies']> | undefined;
}

/**
 * `workers: N`: starts the pool and keeps it in step with this process. The embedded issuer's keys
 * and revocations go to every worker as they change; a policy set is loaded by the workers only
 * after it loaded here (a broken folder is refused once, and every process keeps its last good set).
 */
export async function serveWithWorkers(o: {
  config: Readonly<Config>;
  count: number;
  cache: Cache;
  subjectKey: Buffer;
  tokens: TokenModule | undefined;
  runtimes: ReadonlyArray<PolicyRuntime | undefined>;
  logger: Logger;
  metrics: Metrics;
}): Promise<ClusterServing> {
  const { tokens, logger } = o;
  const pool = await startWorkerPool({
    config: o.config,
    count: o.count,
    cache: o.cache,
    subjectKey: o.subjectKey,
    logger,
    metrics: o.metrics,
    issuer: () => (tokens ? { policy: tokens.trustedIssuer().policy, keys: tokens.keyring.published(), revoked: tokens.ctx.revoked.list() } : undefined),
  });
  tokens?.keyring.onChange(() => pool.keys(tokens.keyring.published()));
  tokens?.ctx.revoked.onChange((jtis, full) => pool.revoked(jtis, full));
  let latest: ReturnType<WorkerPool['reloadPolicies']> | undefined;
  for (const runtime of o.runtimes) {
    runtime?.onReload((outcome) => {
      if (!outcome.ok) return;
      latest = pool.reloadPolicies(outcome.set).then((answers) => {
        for (const a of answers) {
          if (!a.ok || a.revision !== outcome.revision) logger.error({ slot: a.slot, set: outcome.set, revision: outcome.revision, worker_revision: a.revision, error: a.error }, 'a worker did not load the policy set the primary loaded');
        }
        return answers;
      });
    });
  }
  logger.info({ workers: o.count }, 'gRPC served by cluster workers');
  return {
    pool,
    grpc: { port: pool.port, close: (timeoutMs) => pool.close(timeoutMs ?? o.config.lifecycle.shutdown_timeout_seconds * 1000) },
    lastReload: () => latest,
  };
}
