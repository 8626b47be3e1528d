import type { Command } from 'commander';
import { HealthCheckResponse_ServingStatus as Serving } from '../gen/grpc/health/v1/health_pb.js';
import { checkHealth } from '../grpc/health_client.js';

export function registerHealth(program: Command): void {
  program
    .command('health')
    .description('ask a running sidecar for its gRPC health (exit 0 when SERVING, 1 otherwise)')
    .option('-a, --address <host:port>', 'sidecar gRPC address', '127.0.0.1:9191')
    .option('-s, --service <name>', 'service to ask about ("" = the whole server)', '')
    .action(async (opts: { address: string; service: string }) => {
      try {
        const status = await checkHealth(opts.address, opts.service);
        process.stdout.write(`${Serving[status]}\n`);
        process.exit(status === Serving.SERVING ? 0 : 1);
      } catch (err) {
        process.stderr.write(`portcullis: health check failed: ${(err as Error).message}\n`);
        process.exit(1);
      }
    });
}
