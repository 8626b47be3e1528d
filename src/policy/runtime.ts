import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { createPolicyEngine, type ActivePolicySet } from './engine.js';
import { loadPolicyBundle } from './load.js';
import { warmUp } from './warmup.js';

export interface PolicyRuntime {
  /** The live set; undefined until the first load succeeds. */
  current(): ActivePolicySet | undefined;
  /**
   * Loads the folder, validates it completely, warms it up and swaps it in atomically.
   * On failure the last good set keeps serving and the error is returned.
   */
  reload(): { ok: true; policies: number } | { ok: false; error: string };
}

export interface PolicyRuntimeOptions {
  dir: string;
  warmupChecks: number;
  decisionCacheSize: number;
  /** Engine namespace (see createPolicyEngine); the shadow set uses its own. */
  namespace?: string;
  /** Names this set in logs and metrics: `active` or `shadow`. */
  role?: 'active' | 'shadow';
  logger: Logger;
  metrics: Metrics;
}

export function createPolicyRuntime({ dir, warmupChecks, decisionCacheSize, namespace, role = 'active', logger, metrics }: PolicyRuntimeOptions): PolicyRuntime {
  const engine = createPolicyEngine({ decisionCacheSize, namespace });
  let active: ActivePolicySet | undefined;
  return {
    current: () => active,
    reload() {
      try {
        const next = engine.install(loadPolicyBundle(dir));
        warmUp(next, warmupChecks);
        active = next;
        metrics.policyReloads.inc({ result: 'success', set: role });
        logger.info({ set: role, dir: next.bundle.dir, policies: next.bundle.policies.length, slices: next.bundle.slices.size, generation: next.generation }, 'policies loaded');
        return { ok: true, policies: next.bundle.policies.length };
      } catch (err) {
        metrics.policyReloads.inc({ result: 'failure', set: role });
        const error = errorMessage(err);
        logger.error({ set: role, dir, error }, active ? 'policy reload rejected; the last good set keeps serving' : 'policy load failed');
        return { ok: false, error };
      }
    },
  };
}
