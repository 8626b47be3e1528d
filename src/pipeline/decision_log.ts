import { randomInt } from 'node:crypto';
import { pino } from 'pino';
import type { Clock } from '../lib/clock.js';
import { createTokenBucket } from '../lib/token_bucket.js';
import { stdout, type Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { DecisionRecord } from './record.js';

export interface DecisionLogOptions {
  /** `stdout` or a file path (appended to, created with its folder). */
  destination: string;
  sampleRate: number;
  maxPerSecond: number;
  clock: Clock;
  metrics: Metrics;
  logger: Logger;
  /** A uniform number in [0, 1) per decision (injected for tests). */
  random?: () => number;
}

export interface DecisionLog {
  write(d: DecisionRecord, ms: number): void;
  /** Subjects are written as keyed hashes (the audit log's user reference); set once the key is known. */
  setSubjectHash(hash: (subject: string) => string): void;
  close(): Promise<void>;
}

const MAX_PATH = 1024;
const uniform = () => randomInt(0, 2 ** 32) / 2 ** 32;

/**
 * The decision log: one JSON line per sampled decision, never a credential, a query string or a
 * raw subject. A token bucket caps the rate (burst = one second's worth) so a flood of requests
 * cannot flood the log; what it refuses is counted in `auth_decision_log_dropped_total`.
 */
export function createDecisionLog(o: DecisionLogOptions): DecisionLog {
  // stdout is shared with the process log: whole lines in its batch, written once per event-loop turn.
  const out = o.destination === 'stdout' ? undefined : pino.destination({ dest: o.destination, mkdir: true, append: true, sync: false, minLength: 4096 });
  const lines = out ?? stdout();
  let reported = false;
  out?.on('error', (err: Error) => {
    if (!reported) o.logger.error({ err, destination: o.destination }, 'decision log write failed');
    reported = true;
  });
  const bucket = createTokenBucket(o.maxPerSecond, o.maxPerSecond, o.clock);
  const random = o.random ?? uniform;
  let hash: ((subject: string) => string) | undefined;
  let closing: Promise<void> | undefined;

  return {
    write(d, ms) {
      if (o.sampleRate < 1 && random() >= o.sampleRate) return;
      if (!bucket.take()) {
        o.metrics.decisionLogDropped.inc();
        return;
      }
      const record = {
        decision_id: d.decisionId,
        time: new Date(o.clock.now()).toISOString(),
        request_id: d.requestId || undefined,
        source: d.source,
        request: d.request && { method: d.request.method, path: pathOnly(d.request.path), host: d.request.host },
        subject: d.subject === undefined ? undefined : hash ? hash(d.subject) : '[unhashed]',
        issuer: d.issuer,
        action: d.action,
        resource_type: d.resourceType,
        resource_id: d.resourceId,
        allow: d.allow,
        status: d.status,
        reason: d.allow ? undefined : (d.reason ?? 'forbidden'),
        code: d.code,
        determining_policies: d.reasons,
        policies_checked: d.policiesChecked,
        policy_revision: d.policyRevision,
        cached: d.cached,
        latency_ms: Math.round(ms * 1000) / 1000,
      };
      lines.write(`${JSON.stringify(record)}\n`);
    },
    setSubjectHash(h) {
      hash = h;
    },
    close() {
      closing ??= out
        ? new Promise<void>((resolve) => {
            out.once('close', () => resolve());
            out.end();
          })
        : Promise.resolve(stdout().flush());
      return closing;
    },
  };
}

/** The path as received, without query string or fragment, bounded in length. */
function pathOnly(path: string): string {
  const end = path.search(/[?#]/);
  const bare = end === -1 ? path : path.slice(0, end);
  return bare.length > MAX_PATH ? `${bare.slice(0, MAX_PATH)}…` : bare;
}
