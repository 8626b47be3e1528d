import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { Client, credentials, type ServiceError } from '@grpc/grpc-js';
import { HealthCheckRequestSchema, HealthCheckResponseSchema, type HealthCheckResponse_ServingStatus } from '../gen/grpc/health/v1/health_pb.js';

/** One grpc.health.v1 Check (the CLI's `health` command, container HEALTHCHECK, tests). */
export function checkHealth(address: string, service = '', deadlineMs = 3000): Promise<HealthCheckResponse_ServingStatus> {
  const client = new Client(address, credentials.createInsecure());
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      '/grpc.health.v1.Health/Check',
      (m: Uint8Array) => Buffer.from(m),
      (b: Buffer) => fromBinary(HealthCheckResponseSchema, b),
      toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, { service })),
      { deadline: Date.now() + deadlineMs },
      (err: ServiceError | null, res?: { status: HealthCheckResponse_ServingStatus }) => {
        client.close();
        if (err) reject(err);
        else resolve(res!.status);
      },
    );
  });
}
