import { isPortcullisError } from '../lib/errors.js';

/** Exit codes: 1 runtime failure (or a denied check), 2 bad configuration or usage. */
export function exitWith(err: unknown): never {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`portcullis: ${message}\n`);
  process.exit(isPortcullisError(err, 'ERR_CONFIG_INVALID') || isPortcullisError(err, 'ERR_BAD_REQUEST') ? 2 : 1);
}

/** Wraps a command action so any failure ends with a clear message and the exit code above. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (err) {
      exitWith(err);
    }
  };
}
