import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpCheckRequest } from '../../src/extauthz/client.js';
import type { Span } from '../../src/gen/opentelemetry/proto/trace/v1/trace_pb.js';
import { startOtlpGrpcReceiver, type OtlpReceiver } from '../helpers/otlp_receiver.js';
import { startSidecar, type Sidecar } from '../helpers/sidecar.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

let receiver: OtlpReceiver;
let sidecar: Sidecar;
beforeAll(async () => {
  receiver = await startOtlpGrpcReceiver();
  sidecar = await startSidecar({ observability: { tracing: { enabled: true, protocol: 'grpc', endpoint: receiver.url, insecure: true, sample_rate: 1, export_interval_ms: 50 } } });
});
afterAll(async () => {
  await sidecar?.close();
  await receiver?.close();
});

const spans = (): Span[] => receiver.spans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans));

describe('OTLP/gRPC trace export', () => {
  it("sends the decision's span tree to a collector's TraceService over plaintext gRPC", async () => {
    const traceId = '7ace0000000000000000000000000001';
    const res = await sidecar.client.check(httpCheckRequest('GET', '/public/x', { traceparent: `00-${traceId}-7777777777777777-01` }));
    expect(res.httpResponse.case).toBe('okResponse');
    await expect.poll(() => spans().filter((s) => hex(s.traceId) === traceId).length, { timeout: 10_000 }).toBeGreaterThanOrEqual(3);
    expect(receiver.problems).toEqual([]);
    const trace = spans().filter((s) => hex(s.traceId) === traceId);
    const check = trace.find((s) => s.name === 'auth.authz.check')!;
    expect(hex(check.parentSpanId)).toBe('7777777777777777');
    for (const child of ['auth.authz.resource_check', 'auth.authz.rbac_eval']) expect(hex(trace.find((s) => s.name === child)!.parentSpanId)).toBe(hex(check.spanId));
    const service = receiver.spans[0]!.resource!.attributes.find((a) => a.key === 'service.name')?.value?.value.value;
    expect(service).toBe('portcullis');
  });
});
