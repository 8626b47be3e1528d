import type { Command } from 'commander';
import { loadConfig } from '../config/index.js';
import { startServer } from '../server.js';
import { createLogger } from '../telemetry/logger.js';
import { exitWith } from './fail.js';

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the sidecar (gRPC ext_authz, token module, health)')
    .option('-c, --config <file>', 'YAML config file (env PORTCULLIS_CONFIG)')
    .action(async (opts: { config?: string }) => {
      let server;
      try {
        const config = loadConfig({ file: opts.config });
        server = await startServer(config, { logger: createLogger(config.observability.logging.level, undefined, config.observability.logging.format) });
      } catch (err) {
        exitWith(err);
      }
      const running = server;
      process.on('SIGHUP', () => {
        void running.reloadPolicies();
        running.reloadKeys().catch((err: unknown) => process.stderr.write(`portcullis: key reload failed: ${(err as Error).message}\n`));
      });
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        process.stderr.write(`portcullis: ${signal}, draining\n`);
        running.close().then(() => process.exit(0), () => process.exit(1));
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
    });
}
