import type { ActivePolicySet, CedarContext, EvaluationResult } from '../policy/index.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { Principal } from '../tokens/index.js';
import { principalEntitiesFor, requestEntities } from './entities.js';

export interface ShadowQuestion {
  principal: Principal | undefined;
  principalUid: { type: string; id: string };
  action: string;
  resource: { type: string; id: string };
  context: CedarContext;
  requestId: string;
  decisionId: string;
}

/**
 * Evaluates a candidate policy set on live traffic beside the active one. It never changes the
 * answer: disagreements (and shadow errors) are counted and logged with both decisions.
 */
export function createShadowEvaluator(shadow: () => ActivePolicySet | undefined, metrics: Metrics, logger: Logger) {
  const disagreements = metrics.shadowDisagreements;
  return (q: ShadowQuestion, active: EvaluationResult): void => {
    const set = shadow();
    if (!set) return;
    let result: EvaluationResult | undefined;
    let error: string | undefined;
    try {
      const who = principalEntitiesFor(q.principal, set);
      result = set.evaluate({ principal: q.principalUid, action: q.action, resource: q.resource, context: q.context, entities: requestEntities(who, q.resource.type, q.resource.id, set), cacheKey: who.cacheKey });
    } catch (err) {
      error = (err as Error).message;
    }
    const shadowAnswer = result ? (result.allow ? 'allow' : 'deny') : 'error';
    const activeAnswer = active.allow ? 'allow' : 'deny';
    if (shadowAnswer === activeAnswer) return;
    disagreements.inc({ active: activeAnswer, shadow: shadowAnswer });
    logger.info(
      {
        decision_id: q.decisionId,
        request_id: q.requestId,
        action: q.action,
        resource_type: q.resource.type,
        active: { decision: activeAnswer, determining_policies: active.reasons },
        shadow: { decision: shadowAnswer, determining_policies: result?.reasons ?? [], error },
      },
      'shadow policy set disagrees',
    );
  };
}
