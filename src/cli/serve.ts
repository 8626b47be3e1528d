import type { Command } from 'commander';
import { loadConfig, type Config } from '../config/index.js';
import { startServer, type PortcullisServer } from '../server.js';
import { createLogger, type Logger } from '../telemetry/logger.js';
import { exitWith } from './fail.js';
import { installLifecycle, type Lifecycle } from './lifecycle.js';

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the sidecar (gRPC ext_authz, token module, health)')
    .option('-c, --config <file>', 'YAML config file (env PORTCULLIS_CONFIG)')
    .action(async (opts: { config?: string }) => {
      let config: Readonly<Config>;
      let logger: Logger;
      let server: PortcullisServer;
      let lifecycle: Lifecycle | undefined;
      try {
        config = loadConfig({ file: opts.config });
        logger = createLogger(config.observability.logging.level, undefined, config.observability.logging.format);
        // The store watchdog gives up through the lifecycle (drain, exit 1), which exists once serving.
        server = await startServer(config, { logger, onFatal: (reason) => (lifecycle ? lifecycle.shutdown(reason, 1) : exitWith(new Error(reason))) });
      } catch (err) {
        exitWith(err);
      }
      lifecycle = installLifecycle(server, config, logger, server.metrics);
      process.on('SIGHUP', () => {
        void server.reloadPolicies();
        server.reloadKeys().catch((err: unknown) => process.stderr.write(`portcullis: key reload failed: ${(err as Error).message}\n`));
      });
    });
}
