import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createManualClock } from '../../../src/lib/clock.js';
import { createDecisionLog } from '../../../src/pipeline/decision_log.js';
import type { DecisionRecord } from '../../../src/pipeline/record.js';
import { createLogger } from '../../../src/telemetry/logger.js';
import { createMetrics } from '../../../src/telemetry/metrics.js';
import { metricValue } from '../../helpers/sidecar.js';
import { tempDir } from '../../helpers/temp_dir.js';

const decision = (n: number, extra: Partial<DecisionRecord> = {}): DecisionRecord => ({
  decisionId: `d-${n}`,
  requestId: `r-${n}`,
  source: 'envoy',
  allow: false,
  status: 403,
  reason: 'forbidden',
  code: 'ERR_POLICY_DENIED',
  action: 'delete',
  resourceType: 'Document',
  resourceId: 'd1',
  policiesChecked: 4,
  reasons: ['owner-only'],
  errors: [],
  cached: false,
  policyRevision: 'rev-1',
  request: { method: 'DELETE', path: '/documents/d1?access_token=secret-in-query#frag', host: 'api.example' },
  subject: 'user-42',
  issuer: 'https://idp.example',
  ...extra,
});

function setup(o: { sampleRate?: number; maxPerSecond?: number; random?: () => number } = {}) {
  const file = join(tempDir('pc-dlog'), 'logs', 'decisions.jsonl');
  const clock = createManualClock();
  const metrics = createMetrics();
  const log = createDecisionLog({ destination: file, sampleRate: o.sampleRate ?? 1, maxPerSecond: o.maxPerSecond ?? 100, clock, metrics, logger: createLogger('silent'), ...(o.random ? { random: o.random } : {}) });
  log.setSubjectHash((s) => Buffer.from(s).toString('hex'));
  const read = async () => {
    await log.close();
    return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  };
  return { log, clock, metrics, read };
}

describe('decision log', () => {
  it('writes one JSON record per decision: request summary without query, hashed subject, result, policies, revision, latency', async () => {
    const { log, read } = setup();
    log.write(decision(1), 0.4567);
    const [record, ...rest] = await read();
    expect(rest).toEqual([]);
    expect(record).toEqual({
      decision_id: 'd-1',
      time: '2026-01-01T00:00:00.000Z',
      request_id: 'r-1',
      source: 'envoy',
      request: { method: 'DELETE', path: '/documents/d1', host: 'api.example' },
      subject: Buffer.from('user-42').toString('hex'),
      issuer: 'https://idp.example',
      action: 'delete',
      resource_type: 'Document',
      resource_id: 'd1',
      allow: false,
      status: 403,
      reason: 'forbidden',
      code: 'ERR_POLICY_DENIED',
      determining_policies: ['owner-only'],
      policies_checked: 4,
      policy_revision: 'rev-1',
      cached: false,
      latency_ms: 0.457,
    });
    expect(JSON.stringify(record)).not.toContain('secret-in-query');
    expect(JSON.stringify(record)).not.toContain('user-42');
  });

  it('records only the sampled share of decisions', async () => {
    const draws = [0.1, 0.9, 0.3, 0.5, 0.49, 0.99];
    const { log, read } = setup({ sampleRate: 0.5, random: () => draws.shift()! });
    for (let i = 0; i < 6; i++) log.write(decision(i), 1);
    expect((await read()).map((r) => r.decision_id)).toEqual(['d-0', 'd-2', 'd-4']);
  });

  it('caps the rate with a token bucket and counts what it drops', async () => {
    const { log, clock, metrics, read } = setup({ maxPerSecond: 5 });
    for (let i = 0; i < 8; i++) log.write(decision(i), 1);
    expect(await metricValue(metrics, 'auth_decision_log_dropped_total')).toBe(3);
    clock.advance(400); // two tokens refilled
    for (let i = 8; i < 11; i++) log.write(decision(i), 1);
    expect(await metricValue(metrics, 'auth_decision_log_dropped_total')).toBe(4);
    clock.advance(10_000); // refills to the burst, not beyond
    for (let i = 11; i < 18; i++) log.write(decision(i), 1);
    expect(await metricValue(metrics, 'auth_decision_log_dropped_total')).toBe(6);
    expect((await read()).map((r) => r.decision_id)).toEqual(['d-0', 'd-1', 'd-2', 'd-3', 'd-4', 'd-8', 'd-9', 'd-11', 'd-12', 'd-13', 'd-14', 'd-15']);
  });
});
