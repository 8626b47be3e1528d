import { status as Status, type ServiceError } from '@grpc/grpc-js';
import { create, toBinary } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { createAppApiService } from '../../../src/appapi/service.js';
import { httpCheckRequest } from '../../../src/extauthz/client.js';
import { createExtAuthzService } from '../../../src/extauthz/service.js';
import { CheckRequestSchema } from '../../../src/gen/envoy/service/auth/v3/external_auth_pb.js';
import { deadlinePassed } from '../../../src/grpc/deadline.js';
import type { Decision } from '../../../src/pipeline/index.js';
import { createLogger } from '../../../src/telemetry/logger.js';
import { createMetrics } from '../../../src/telemetry/metrics.js';
import { metricValue } from '../../helpers/sidecar.js';

const NOW = 1_800_000_000_000;

describe('deadlinePassed (grpc-js reports the deadline as a Date, a number, or Infinity without one)', () => {
  it.each([
    ['no getDeadline', {}, false],
    ['Infinity (no grpc-timeout)', { getDeadline: () => Infinity }, false],
    ['a number in the future', { getDeadline: () => NOW + 1 }, false],
    ['a number exactly now', { getDeadline: () => NOW }, true],
    ['a number in the past', { getDeadline: () => NOW - 50 }, true],
    ['a Date in the future', { getDeadline: () => new Date(NOW + 200) }, false],
    ['a Date in the past', { getDeadline: () => new Date(NOW - 1) }, true],
  ])('%s -> %s', (_name, call, expected) => {
    expect(deadlinePassed(call as never, NOW)).toBe(expected);
  });
});

describe('a call whose deadline passed before its handler ran', () => {
  const request = Buffer.from(toBinary(CheckRequestSchema, create(CheckRequestSchema, httpCheckRequest('GET', '/documents/d1'))));
  const answer = (handler: (call: unknown, cb: (err: Partial<ServiceError> | null, res?: unknown) => void) => void, call: unknown) =>
    new Promise<{ err: Partial<ServiceError> | null; res: unknown }>((resolve) => handler(call, (err, res) => resolve({ err, res })));

  it('is answered DEADLINE_EXCEEDED without deciding, and counted; a live one is decided', async () => {
    const metrics = createMetrics();
    let decided = 0;
    const decide = async () => {
      decided++;
      return { allow: true, status: 200, decisionId: 'd1', reasons: [], policiesChecked: 1, errors: [], principal: undefined, action: 'read', resourceType: 'Document' } as unknown as Decision;
    };
    const { implementation } = createExtAuthzService({ decide, metrics, logger: createLogger('silent') });
    const Check = implementation.Check as never;
    const expired = await answer(Check, { request, getDeadline: () => Date.now() - 5 });
    expect(expired.err).toEqual({ code: Status.DEADLINE_EXCEEDED, details: 'deadline exceeded before the check started' });
    expect(decided).toBe(0);
    expect(await metricValue(metrics, 'auth_authz_shed_total', { source: 'envoy' })).toBe(1);
    const live = await answer(Check, { request, getDeadline: () => Date.now() + 10_000 });
    expect(live.err).toBeNull();
    expect(decided).toBe(1);
    expect(await metricValue(metrics, 'auth_authz_shed_total', { source: 'envoy' })).toBe(1);
  });

  it('is shed on the app API too (Check, BatchCheck, Plan)', async () => {
    const metrics = createMetrics();
    let ran = 0;
    const svc = createAppApiService({
      check: async () => (ran++, []),
      plan: async () => {
        ran++;
        throw new Error('not reached');
      },
      metrics,
      logger: createLogger('silent'),
    });
    for (const method of ['Check', 'BatchCheck', 'Plan'] as const) {
      const r = await answer(svc.implementation[method] as never, { request: Buffer.alloc(0), metadata: undefined, getDeadline: () => new Date(Date.now() - 1) });
      expect(r.err?.code, method).toBe(Status.DEADLINE_EXCEEDED);
    }
    expect(ran).toBe(0);
    expect(await metricValue(metrics, 'auth_authz_shed_total', { source: 'app' })).toBe(3);
  });
});
