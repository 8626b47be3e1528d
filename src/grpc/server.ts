import { Server, ServerCredentials, type ServiceDefinition, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { DEFAULT_MAX_CONCURRENT_STREAMS } from './limits.js';

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

export interface GrpcServerLimits {
  maxReceiveBytes: number;
  maxConcurrentStreams?: number;
}

/** The listener limits of the `grpc` config section. */
export const grpcLimits = (config: { grpc: { max_receive_message_bytes: number; max_concurrent_streams: number } }): GrpcServerLimits => ({
  maxReceiveBytes: config.grpc.max_receive_message_bytes,
  maxConcurrentStreams: config.grpc.max_concurrent_streams,
});

/** Binds a grpc-js server (h2c) with the given services. */
export async function startGrpcServer(address: string, services: readonly GrpcService[], { maxReceiveBytes, maxConcurrentStreams = DEFAULT_MAX_CONCURRENT_STREAMS }: GrpcServerLimits): Promise<GrpcListener> {
  const server = new Server({
    'grpc.max_receive_message_length': maxReceiveBytes,
    'grpc.max_send_message_length': 1024 * 1024,
    // A client past this many calls in flight waits for one to finish before starting another,
    // so a burst queues at the client instead of pinning memory here.
    'grpc.max_concurrent_streams': maxConcurrentStreams,
    // Nothing serves channelz here; tracking it costs an allocation-heavy wrapper per call.
    'grpc.enable_channelz': 0,
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
