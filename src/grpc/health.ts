import { create } from '@bufbuild/protobuf';
import { status as Status, type ServerWritableStream, type UntypedServiceImplementation, type ServiceDefinition } from '@grpc/grpc-js';
import {
  HealthCheckRequestSchema,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as Serving,
  type HealthCheckResponse,
} from '../gen/grpc/health/v1/health_pb.js';
import { decode, rawRequestMethod } from './codec.js';

export { Serving };

/** Service names reported by grpc.health.v1; "" is the server as a whole. */
export const HEALTH_SERVICES = ['', 'envoy.service.auth.v3.Authorization', 'portcullis.authz.v1.Authorizer'] as const;

export interface HealthState {
  set(status: Serving): void;
  get(): Serving;
}

/** grpc.health.v1.Health (Check, Watch): every known service shares one status. */
export function createHealthService(): { definition: ServiceDefinition; implementation: UntypedServiceImplementation; state: HealthState } {
  let current = Serving.NOT_SERVING;
  const watchers = new Set<{ service: string; stream: ServerWritableStream<Buffer, HealthCheckResponse> }>();
  const statusOf = (service: string) => ((HEALTH_SERVICES as readonly string[]).includes(service) ? current : Serving.SERVICE_UNKNOWN);
  const reply = (status: Serving) => create(HealthCheckResponseSchema, { status });

  const definition: ServiceDefinition = {
    Check: rawRequestMethod('/grpc.health.v1.Health/Check', HealthCheckResponseSchema),
    Watch: rawRequestMethod('/grpc.health.v1.Health/Watch', HealthCheckResponseSchema, true),
  };
  const implementation: UntypedServiceImplementation = {
    Check(call: { request: Buffer }, callback: (err: { code: number; details: string } | null, res?: HealthCheckResponse) => void) {
      const req = decode(HealthCheckRequestSchema, call.request);
      if (!req) return callback({ code: Status.INVALID_ARGUMENT, details: 'malformed HealthCheckRequest' });
      const s = statusOf(req.service);
      if (s === Serving.SERVICE_UNKNOWN) return callback({ code: Status.NOT_FOUND, details: 'unknown service' });
      callback(null, reply(s));
    },
    Watch(stream: ServerWritableStream<Buffer, HealthCheckResponse>) {
      const req = decode(HealthCheckRequestSchema, stream.request);
      if (!req) return stream.destroy(Object.assign(new Error('malformed HealthCheckRequest'), { code: Status.INVALID_ARGUMENT }));
      const watcher = { service: req.service, stream };
      watchers.add(watcher);
      stream.on('cancelled', () => watchers.delete(watcher));
      stream.on('close', () => watchers.delete(watcher));
      stream.write(reply(statusOf(req.service)));
    },
  };
  const state: HealthState = {
    set(status) {
      if (status === current) return;
      current = status;
      for (const w of watchers) if (statusOf(w.service) !== Serving.SERVICE_UNKNOWN) w.stream.write(reply(current));
    },
    get: () => current,
  };
  return { definition, implementation, state };
}
