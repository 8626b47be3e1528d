/**
 * How the PostgreSQL adapter tells an outage from a bad statement. Connection failures (refused,
 * reset, closed by the server, no connection within the timeout, the server shutting down or
 * full) may be retried by idempotent reads; they and timeouts make the store unavailable (HTTP
 * 503). Everything else (a constraint violation, a bug) is an ordinary store error.
 */

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'EAI_AGAIN', 'ECONNABORTED']);

/** SQLSTATE class 08 (connection exception), 57P01-03 (admin / crash shutdown, cannot connect now), 53300 (too many connections). */
const CONNECTION_SQLSTATE = /^(08...|57P0[123]|53300)$/;

/** 57014: statement_timeout (or a cancel); 55P03: lock not available. */
const TIMEOUT_SQLSTATE = /^(57014|55P03)$/;

const CONNECTION_MESSAGES = /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|not queryable|socket hang up/i;

function codeOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : '';
}

/** The connection failed (nothing or not all of a statement's answer arrived): a read may be tried again. */
export function isConnectionFailure(err: unknown): boolean {
  const code = codeOf(err);
  return NETWORK_CODES.has(code) || CONNECTION_SQLSTATE.test(code) || CONNECTION_MESSAGES.test(messageOf(err));
}

/** The store could not answer in time or at all: the caller gets a 503, never an ordinary failure. */
export function isUnavailable(err: unknown): boolean {
  return isConnectionFailure(err) || TIMEOUT_SQLSTATE.test(codeOf(err)) || /Query read timeout/i.test(messageOf(err));
}

/** Exponential back-off with jitter: about 50, 100, 200 ms … capped at 1 s. */
export function retryDelay(attempt: number): number {
  const base = Math.min(50 * 2 ** (attempt - 1), 1_000);
  return Math.round(base / 2 + Math.random() * (base / 2));
}
