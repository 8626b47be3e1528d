import type { LimitName } from '../lib/limits.js';
import type { Logger } from '../telemetry/logger.js';
import { childCache, type Metrics } from '../telemetry/metrics.js';
import type { DecisionLog } from './decision_log.js';
import type { DenyReason } from './types.js';

/**
 * What every decision, from either API, reports to metrics and logs. Callers build it as one object
 * literal with every field in this order (no spread of a decision plus overrides: that costs a new
 * hidden class per call), so every record shares one shape.
 */
export interface DecisionRecord {
  decisionId: string;
  requestId: string;
  source: 'envoy' | 'app';
  allow: boolean;
  status?: number;
  reason?: DenyReason;
  code?: string;
  action: string | undefined;
  resourceType: string | undefined;
  policiesChecked: number;
  reasons: readonly string[];
  errors: readonly string[];
  cached: boolean;
  policyRevision?: string;
  /** The input limit the request exceeded, if any. */
  limit?: LimitName;
  resourceId?: string | undefined;
  /** The checked HTTP request (Envoy path), for the decision log. */
  request?: { method: string; path: string; host: string } | undefined;
  /** The principal's subject (token `sub` or app principal entity id); the decision log hashes it. */
  subject?: string | undefined;
  issuer?: string | undefined;
}

/**
 * Records decisions: metric children memoized (bounded label sets), a debug line per allow, an info
 * line per denial, and a decision-log record when the decision log is on.
 */
export function createDecisionRecorder(metrics: Metrics, logger: Logger, decisionLog?: DecisionLog): (d: DecisionRecord, ms: number) => void {
  const latency = childCache((source) => metrics.authzLatency.labels(source));
  const decisions = childCache((permitted, resourceType, source) => metrics.authzDecisions.labels(permitted, resourceType, source));
  const denials = childCache((reason) => metrics.authzDenied.labels(reason));
  // Decision lines are built below from fixed fields, none named like a secret and none an object
  // whose keys could be: the logger's redaction (24 paths, half of them wildcards) could never censor
  // anything in them, and cost ~10 µs a line, the most expensive step of a denial.
  const lines = logger.child({}, { redact: { paths: [] } });
  return (d, ms) => {
    latency(d.source).observe(ms / 1000);
    decisions(String(d.allow), d.resourceType ?? 'none', d.source).inc();
    metrics.policiesEvaluated.observe(d.policiesChecked);
    if (d.cached) metrics.decisionCacheHits.inc();
    // Allows are logged at debug: the line is only built when that level is on.
    if (d.allow) {
      if (lines.isLevelEnabled('debug')) lines.debug(logLine(d), 'allowed');
    } else {
      if (d.reason) denials(d.reason).inc();
      if (d.limit) metrics.limitExceeded.inc({ limit: d.limit });
      lines.info(logLine(d), 'denied');
    }
    decisionLog?.write(d, ms);
  };
}

function logLine(d: DecisionRecord) {
  return {
    decision_id: d.decisionId,
    request_id: d.requestId,
    source: d.source,
    allow: d.allow,
    status: d.status,
    action: d.action,
    resource_type: d.resourceType,
    policies_checked: d.policiesChecked,
    determining_policies: d.reasons,
    policy_revision: d.policyRevision,
    errors: d.errors.length ? d.errors : undefined,
    // Denials only (undefined members are not written).
    reason: d.allow ? undefined : (d.reason ?? 'forbidden'),
    code: d.allow ? undefined : d.code,
  };
}
