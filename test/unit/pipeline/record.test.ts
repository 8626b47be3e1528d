import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createDecisionRecorder, type DecisionRecord } from '../../../src/pipeline/record.js';
import { createLogger } from '../../../src/telemetry/logger.js';
import { createMetrics } from '../../../src/telemetry/metrics.js';
import { withRequestContext } from '../../../src/telemetry/request_context.js';

function sink() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { lines, stream };
}

const denial: DecisionRecord = {
  decisionId: 'dec-1',
  requestId: 'req-1',
  source: 'envoy',
  allow: false,
  status: 401,
  reason: 'invalid_token',
  code: 'ERR_TOKEN_MALFORMED',
  action: undefined,
  resourceType: undefined,
  policiesChecked: 0,
  reasons: [],
  errors: [],
  cached: false,
  policyRevision: 'rev-1',
};

describe('decision recorder', () => {
  it('logs a denial at info with its fields and the request context, and an allow only at debug', () => {
    for (const level of ['info', 'debug'] as const) {
      const { lines, stream } = sink();
      const record = createDecisionRecorder(createMetrics(), createLogger(level, stream));
      withRequestContext({ request_id: 'req-1', decision_id: 'dec-1' }, () => {
        record(denial, 0.2);
        record({ ...denial, allow: true, status: 200, reason: undefined, code: undefined, action: 'read', resourceType: 'Document', policiesChecked: 3, reasons: ['viewer-read'] }, 0.1);
      });
      expect(lines.map((l) => l.msg)).toEqual(level === 'info' ? ['denied'] : ['denied', 'allowed']);
      expect(lines[0]).toMatchObject({ level: 30, decision_id: 'dec-1', request_id: 'req-1', source: 'envoy', allow: false, status: 401, policies_checked: 0, policy_revision: 'rev-1', reason: 'invalid_token', code: 'ERR_TOKEN_MALFORMED' });
      if (level === 'debug') expect(lines[1]).toMatchObject({ level: 20, allow: true, action: 'read', resource_type: 'Document', determining_policies: ['viewer-read'] });
    }
  });

  it('leaves the logger it was given redacting as before', () => {
    const { lines, stream } = sink();
    const logger = createLogger('info', stream);
    const record = createDecisionRecorder(createMetrics(), logger);
    record(denial, 0.2);
    logger.info({ password: 'hunter2', nested: { token: 'tok' } }, 'other');
    expect(lines[1]).toMatchObject({ msg: 'other', password: '[redacted]', nested: { token: '[redacted]' } });
  });
});
