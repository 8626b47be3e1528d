import { connect } from 'node:http2';
import { Client, credentials, status, type ServiceError } from '@grpc/grpc-js';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCheckClient, httpCheckRequest } from '../../src/extauthz/client.js';
import { createExtAuthzService } from '../../src/extauthz/service.js';
import { HealthCheckRequestSchema, HealthCheckResponseSchema, HealthCheckResponse_ServingStatus as Serving } from '../../src/gen/grpc/health/v1/health_pb.js';
import { startGrpcServer } from '../../src/grpc/server.js';
import { systemClock } from '../../src/lib/clock.js';
import { createDecider } from '../../src/pipeline/index.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { createTokenVerifier } from '../../src/tokens/index.js';
import { EXAMPLE_POLICIES, healthCheck, metricValue, startSidecar, type Sidecar } from '../helpers/sidecar.js';
import { PortcullisError } from '../../src/lib/errors.js';
import { loadPolicyBundle, type ActivePolicySet } from '../../src/policy/index.js';

let sidecar: Sidecar;

beforeAll(async () => {
  sidecar = await startSidecar({});
});

afterAll(async () => {
  await sidecar?.close();
});

describe('malformed input on the wire', () => {
  it.each([
    ['truncated varint', Uint8Array.from([0x0a, 0xff])],
    ['length beyond the buffer', Uint8Array.from([0x0a, 0x7f, 0x01])],
    ['invalid wire type', Uint8Array.from([0x0f, 0x00])],
    ['random bytes', Uint8Array.from({ length: 256 }, (_, i) => (i * 7919 + 13) % 256)],
  ])('answers %s with INVALID_ARGUMENT and keeps serving', async (_name, bytes) => {
    const err = (await sidecar.client.checkRaw(bytes).catch((e: unknown) => e)) as ServiceError;
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toBe('malformed CheckRequest');
    const ok = await sidecar.client.check(httpCheckRequest('GET', '/public/x'));
    expect(ok.httpResponse.case).toBe('okResponse');
  });

  it('counts malformed requests by code', async () => {
    expect(await metricValue(sidecar.metrics, 'auth_authz_errors_total', { code: 'ERR_MALFORMED_REQUEST' })).toBeGreaterThanOrEqual(4);
  });

  it('answers an empty CheckRequest with 400, not a crash', async () => {
    const res = await sidecar.client.checkRaw(new Uint8Array());
    expect(res.httpResponse.case).toBe('deniedResponse');
    if (res.httpResponse.case === 'deniedResponse') expect(res.httpResponse.value.status?.code).toBe(400);
  });

  it('rejects a message larger than grpc.max_receive_message_bytes with RESOURCE_EXHAUSTED', async () => {
    const small = await startSidecar({ grpc: { max_receive_message_bytes: 4096 } });
    try {
      const err = (await small.client.check(httpCheckRequest('GET', '/public/x', { 'x-big': 'a'.repeat(10_000) })).catch((e: unknown) => e)) as ServiceError;
      expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
      expect((await small.client.check(httpCheckRequest('GET', '/public/x'))).httpResponse.case).toBe('okResponse');
    } finally {
      await small.close();
    }
  });
});

/** The ext_authz service alone, over a policy source the test controls. */
async function bareExtAuthz(policies: () => ActivePolicySet | undefined) {
  const metrics = createMetrics();
  const lines: string[] = [];
  const logger = createLogger('info', { write: (l: string) => void lines.push(l) });
  const decide = createDecider({ verifier: createTokenVerifier({ issuers: [], clock: systemClock, metrics, cacheMaxEntries: 0 }), policies, clock: systemClock, metrics, logger });
  const grpc = await startGrpcServer('127.0.0.1:0', [createExtAuthzService({ decide, metrics, logger })], { maxReceiveBytes: 1 << 20 });
  const client = createCheckClient(`127.0.0.1:${grpc.port}`);
  return {
    metrics,
    lines,
    failure: () => client.check(httpCheckRequest('GET', '/public/x')).then(() => undefined, (e: unknown) => e as ServiceError),
    async close() {
      client.close();
      await grpc.close();
    },
  };
}

describe('calls in flight per connection', () => {
  /** The SETTINGS_MAX_CONCURRENT_STREAMS the server advertises on a fresh HTTP/2 connection. */
  async function advertisedStreams(address: string): Promise<number | undefined> {
    const session = connect(`http://${address}`);
    try {
      return await new Promise<number | undefined>((resolve, reject) => {
        session.once('remoteSettings', (settings) => resolve(settings.maxConcurrentStreams));
        session.once('error', reject);
      });
    } finally {
      session.close();
    }
  }

  it('advertises grpc.max_concurrent_streams (default 128) in its HTTP/2 settings', async () => {
    expect(await advertisedStreams(sidecar.address)).toBe(128);
  });

  it('lets a client past the limit wait for a free stream: every call of a burst is answered', async () => {
    const narrow = await startSidecar({ grpc: { max_concurrent_streams: 2 } });
    try {
      expect(await advertisedStreams(narrow.address)).toBe(2);
      const answers = await Promise.all(Array.from({ length: 12 }, () => narrow.client.check(httpCheckRequest('GET', '/public/x'))));
      expect(answers.map((a) => a.httpResponse.case)).toEqual(Array(12).fill('okResponse'));
    } finally {
      await narrow.close();
    }
  });
});

describe('internal failures', () => {
  it('answers UNAVAILABLE (so failure_mode_allow decides) when no policy set is loaded, never an allow', async () => {
    const bare = await bareExtAuthz(() => undefined);
    try {
      const err = await bare.failure();
      expect(err?.code).toBe(status.UNAVAILABLE);
      expect(err?.details).toBe('policies not loaded');
      expect(await metricValue(bare.metrics, 'auth_authz_errors_total', { code: 'ERR_POLICY_NOT_LOADED' })).toBe(1);
    } finally {
      await bare.close();
    }
  });

  it('answers INTERNAL with a generic message when the engine fails, and logs the detail', async () => {
    const broken: ActivePolicySet = {
      bundle: loadPolicyBundle(EXAMPLE_POLICIES),
      generation: 1,
      evaluate: () => {
        throw new PortcullisError('ERR_POLICY_EVAL', 'cedar evaluation failed: wasm trap');
      },
      checkKnown: () => {},
    };
    const bare = await bareExtAuthz(() => broken);
    try {
      const err = await bare.failure();
      expect(err?.code).toBe(status.INTERNAL);
      expect(err?.details).toBe('internal error');
      expect(await metricValue(bare.metrics, 'auth_authz_errors_total', { code: 'ERR_POLICY_EVAL' })).toBe(1);
      expect(bare.lines.join('')).toContain('wasm trap');
    } finally {
      await bare.close();
    }
  });
});

describe('grpc.health.v1', () => {
  it('reports SERVING for the server and the Authorization service once policies are loaded', async () => {
    expect((await healthCheck(sidecar.address)).status).toBe(Serving.SERVING);
    expect((await healthCheck(sidecar.address, 'envoy.service.auth.v3.Authorization')).status).toBe(Serving.SERVING);
  });

  it('answers NOT_FOUND for an unknown service', async () => {
    const err = (await healthCheck(sidecar.address, 'nope.Service').catch((e: unknown) => e)) as ServiceError;
    expect(err.code).toBe(status.NOT_FOUND);
  });

  it('streams status changes to Watch and reports NOT_SERVING while shutting down', async () => {
    const other = await startSidecar({});
    const client = new Client(other.address, credentials.createInsecure());
    const seen: Serving[] = [];
    const stream = client.makeServerStreamRequest(
      '/grpc.health.v1.Health/Watch',
      (m: Uint8Array) => Buffer.from(m),
      (b: Buffer) => fromBinary(HealthCheckResponseSchema, b),
      toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, { service: '' })),
    );
    stream.on('data', (m: { status: Serving }) => seen.push(m.status));
    stream.on('error', () => {});
    await expect.poll(() => seen.length).toBe(1);
    expect(seen[0]).toBe(Serving.SERVING);
    other.server.health.set(Serving.NOT_SERVING);
    await expect.poll(() => seen.at(-1)).toBe(Serving.NOT_SERVING);
    stream.cancel();
    client.close();
    await other.close();
  });
});
