import { Server, ServerCredentials, type ServiceDefinition, type UntypedServiceImplementation } from '@grpc/grpc-js';

export interface GrpcService {
  definition: ServiceDefinition;
  implementation: UntypedServiceImplementation;
}

export interface GrpcListener {
  /** The port actually bound (useful with port 0). */
  port: number;
  /** Stops accepting calls and lets those in flight finish for up to `graceMs`, then cuts them; true when none was cut. */
  close(graceMs?: number): Promise<boolean>;
}

/** Binds a grpc-js server (h2c) with the given services. */
export async function startGrpcServer(address: string, services: readonly GrpcService[], maxReceiveBytes: number): Promise<GrpcListener> {
  const server = new Server({
    'grpc.max_receive_message_length': maxReceiveBytes,
    'grpc.max_send_message_length': 1024 * 1024,
  });
  for (const s of services) server.addService(s.definition, s.implementation);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(address, ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound)));
  });
  return {
    port,
    close: (graceMs = 5000) =>
      new Promise<boolean>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve(false);
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve(true);
        });
      }),
  };
}
