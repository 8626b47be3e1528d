import type { Command } from 'commander';
import { loadConfig } from '../config/index.js';
import { startServer } from '../server.js';
import { createLogger } from '../telemetry/logger.js';
import { exitWith } from './fail.js';
import { installLifecycle, type Lifecycle } from './lifecycle.js';

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the sidecar (gRPC ext_authz, token module, health)')
    .option('-c, --config <file>', 'YAML config file (env PORTCULLIS_CONFIG)')
    .action(async (opts: { config?: string }) => {
      let lifecycle: Lifecycle | undefined;
      try {
        const config = loadConfig({ file: opts.config });
        const logger = createLogger(config.observability.logging.level, undefined, config.observability.logging.format);
        await startServer(config, {
          logger,
          // The store watchdog gives up through the lifecycle (drain, exit 1), which exists once serving.
          onFatal: (reason) => (lifecycle ? lifecycle.shutdown(reason, 1) : exitWith(new Error(reason))),
          // Signal handlers go in before "portcullis serving" is logged: whoever waits for that line
          // may signal at once, and without a handler Node would terminate on the spot.
          onServing: (server) => {
            lifecycle = installLifecycle(server, config, logger, server.metrics);
            process.on('SIGHUP', () => {
              void server.reloadPolicies();
              server.reloadKeys().catch((err: unknown) => process.stderr.write(`portcullis: key reload failed: ${(err as Error).message}\n`));
            });
          },
        });
      } catch (err) {
        exitWith(err);
      }
    });
}
