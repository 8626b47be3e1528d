import { constants } from 'node:os';
import type { Config } from '../config/index.js';
import type { PortcullisServer } from '../server.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';

export interface Lifecycle {
  /** Drains, closes and exits with `code` (or 1 when requests had to be cut); only the first call counts. */
  shutdown(reason: string, code: number): void;
}

/** Exit code of a process ended by a second signal, by shell convention. */
const signalExitCode = (signal: NodeJS.Signals) => 128 + (constants.signals[signal] ?? 15);

/**
 * The process around a running server:
 * - SIGTERM / SIGINT: health NOT_SERVING and `/ready` 503 at once, the listeners keep answering for
 *   `lifecycle.drain_seconds`, then stop accepting; requests in flight get
 *   `lifecycle.shutdown_timeout_seconds`; then the store closes and the process exits 0 (1 when
 *   requests had to be cut). A second signal exits at once with 128 + its number.
 * - An unhandled promise rejection is logged and counted and the process keeps serving: every request
 *   path settles its own errors, so one that escapes is background work that missed its `catch`,
 *   and no half-done synchronous state is left behind.
 * - An uncaught exception is logged and counted, then the process shuts down as above with exit
 *   code 1: synchronous state may be broken half-way, so the orchestrator should start a fresh one.
 */
export function installLifecycle(server: PortcullisServer, config: Readonly<Config>, logger: Logger, metrics: Metrics): Lifecycle {
  const drainMs = config.lifecycle.drain_seconds * 1000;
  const timeoutMs = config.lifecycle.shutdown_timeout_seconds * 1000;
  let stopping = false;
  let exitCode = 0;
  // With nobody reading stdout or stderr any more, a write fails with EPIPE (asynchronously on
  // these streams; the log destination drops such lines itself): not an uncaught exception that
  // would turn a clean stop into exit code 1.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});

  const shutdown = (reason: string, code: number) => {
    exitCode = Math.max(exitCode, code);
    if (stopping) return;
    stopping = true;
    server.drain();
    logger.info({ reason, drain_seconds: drainMs / 1000, shutdown_timeout_seconds: timeoutMs / 1000 }, 'shutting down: not ready, draining');
    // Whatever happens below, the process ends: a close that hangs (a store that never answers) is cut.
    setTimeout(() => finish(1, 'shutdown did not complete in time'), drainMs + timeoutMs + 5000);
    setTimeout(() => {
      logger.info('drain window over: listeners stop accepting');
      server.close({ timeoutMs }).then(
        (clean) => {
          if (!clean) logger.error({ shutdown_timeout_seconds: timeoutMs / 1000 }, 'requests still in flight after the shutdown timeout were cut');
          finish(clean ? exitCode : Math.max(exitCode, 1), 'portcullis stopped');
        },
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          finish(1, 'portcullis stopped');
        },
      );
    }, drainMs);
  };

  const finish = (code: number, message: string) => {
    logger.info({ exit_code: code }, message);
    process.exit(code);
  };

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      if (!stopping) {
        process.stderr.write(`portcullis: ${signal}, draining for ${drainMs / 1000} s (send it again to exit at once)\n`);
        return shutdown(signal, 0);
      }
      process.stderr.write(`portcullis: second ${signal}, exiting at once\n`);
      logger.warn({ signal }, 'second signal: exiting without draining');
      process.exit(signalExitCode(signal));
    });
  }
  process.on('unhandledRejection', (err) => {
    metrics.unhandledErrors.inc({ kind: 'rejection' });
    logger.error({ err }, 'unhandled promise rejection (the process keeps serving)');
  });
  process.on('uncaughtException', (err) => {
    metrics.unhandledErrors.inc({ kind: 'exception' });
    logger.fatal({ err }, 'uncaught exception: draining and exiting 1');
    shutdown('uncaught exception', 1);
  });
  return { shutdown };
}
