import { errorMessage } from '../lib/errors.js';
import { LimitExceeded } from '../lib/limits.js';
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
  /** When the live set was loaded, and the last rejected reload since (if any). */
  status(): { loadedAt: string | undefined; lastFailure: { at: string; error: string } | undefined };
  /** Calls `listener` after every load attempt (the composition root writes audit rows from it). */
  onReload(listener: (outcome: ReloadOutcome) => void): void;
}

export type ReloadOutcome = { set: 'active' | 'shadow'; ok: true; revision: string; policies: number } | { set: 'active' | 'shadow'; ok: false; error: string };

export interface PolicyRuntimeOptions {
  dir: string;
  warmupChecks: number;
  decisionCacheSize: number;
  /** Engine namespace (see createPolicyEngine); the shadow set uses its own. */
  namespace?: string;
  /** Names this set in logs and metrics: `active` or `shadow`. */
  role?: 'active' | 'shadow';
  /** Largest policy file read (`policies.max_file_bytes`). */
  maxFileBytes?: number;
  logger: Logger;
  metrics: Metrics;
}

export function createPolicyRuntime({ dir, warmupChecks, decisionCacheSize, namespace, role = 'active', maxFileBytes, logger, metrics }: PolicyRuntimeOptions): PolicyRuntime {
  const engine = createPolicyEngine({ decisionCacheSize, namespace });
  let active: ActivePolicySet | undefined;
  let loadedAt: string | undefined;
  let lastFailure: { at: string; error: string } | undefined;
  const listeners: Array<(o: ReloadOutcome) => void> = [];
  const tell = (o: ReloadOutcome) => {
    for (const l of listeners) l(o);
  };
  return {
    onReload: (listener) => void listeners.push(listener),
    current: () => active,
    status: () => ({ loadedAt, lastFailure }),
    reload() {
      try {
        const next = engine.install(loadPolicyBundle(dir, { maxFileBytes }), (set) => warmUp(set, warmupChecks));
        active = next;
        loadedAt = new Date().toISOString();
        lastFailure = undefined;
        metrics.policyReloads.inc({ result: 'success', set: role });
        logger.info({ set: role, revision: next.bundle.revision, dir: next.bundle.dir, policies: next.bundle.policies.length, slices: next.bundle.slices.size, generation: next.generation }, 'policies loaded');
        tell({ set: role, ok: true, revision: next.bundle.revision, policies: next.bundle.policies.length });
        return { ok: true, policies: next.bundle.policies.length };
      } catch (err) {
        metrics.policyReloads.inc({ result: 'failure', set: role });
        if (err instanceof LimitExceeded) metrics.limitExceeded.inc({ limit: err.limit });
        const error = errorMessage(err);
        lastFailure = { at: new Date().toISOString(), error };
        logger.error({ set: role, dir, error }, active ? 'policy reload rejected; the last good set keeps serving' : 'policy load failed');
        tell({ set: role, ok: false, error });
        return { ok: false, error };
      }
    },
  };
}
