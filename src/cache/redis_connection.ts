import { Redis } from 'ioredis';
import { errorMessage, PortcullisError } from '../lib/errors.js';

/** What the Redis adapter logs through (a pino logger fits); connection changes only, never keys. */
export interface CacheLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface RedisConnectionOptions {
  url: string;
  /** `commands` (fails fast while disconnected) or `subscriber` (pub/sub only). */
  role: 'commands' | 'subscriber';
  /** Shown in `CLIENT LIST` as `<name>:<role>`. */
  name: string;
  commandTimeoutMs: number;
  connectTimeoutMs: number;
  logger?: CacheLogger | undefined;
}

/** Delay before reconnect attempt `n`: 50 ms doubling to 2 s, plus jitter so replicas do not reconnect in step. */
export function reconnectDelay(attempt: number): number {
  return Math.min(50 * 2 ** Math.min(attempt - 1, 6), 2_000) + Math.floor(Math.random() * 100);
}

/** `host:port` of a Redis URL, without credentials, for logs and error messages. */
export function redisAddress(url: string): string {
  try {
    return new URL(url).host || url;
  } catch {
    return '(unparseable URL)';
  }
}

/**
 * Opens one connection and waits until it is ready, at most `connectTimeoutMs`; fails with
 * ERR_CACHE otherwise (the server refuses to start without its cache). Afterwards it reconnects
 * with back-off for ever. Commands never wait for a connection: while disconnected they fail at
 * once (no offline queue), and every command is bounded by `commandTimeoutMs`. A command in flight
 * when the connection drops fails rather than being sent again (`maxRetriesPerRequest: 0`): INCR and
 * SET NX are not idempotent, and a resent SET NX would report its own first write as a replay.
 */
export async function openRedisConnection(o: RedisConnectionOptions): Promise<Redis> {
  const where = redisAddress(o.url);
  const redis = new Redis(o.url, {
    lazyConnect: true,
    connectionName: `${o.name}:${o.role}`,
    connectTimeout: o.connectTimeoutMs,
    commandTimeout: o.commandTimeoutMs,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResubscribe: false,
    retryStrategy: reconnectDelay,
  });
  let firstError: unknown;
  let up = false;
  redis.on('error', (err: unknown) => {
    firstError ??= err;
    if (up) o.logger?.warn({ redis: where, role: o.role, error: errorMessage(err) }, 'redis connection lost; reconnecting with back-off');
    up = false;
  });
  // Said when a reconnect is scheduled, not on 'close': a deliberate quit closes too, and is no loss.
  let closedWhileUp = false;
  redis.on('close', () => {
    closedWhileUp = up;
    up = false;
  });
  redis.on('reconnecting', () => {
    if (closedWhileUp) o.logger?.warn({ redis: where, role: o.role }, 'redis connection closed; reconnecting with back-off');
    closedWhileUp = false;
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      redis.connect(),
      new Promise((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${o.connectTimeoutMs} ms`)), o.connectTimeoutMs);
      }),
    ]);
  } catch (err) {
    redis.disconnect();
    throw new PortcullisError('ERR_CACHE', `cannot connect to Redis at ${where}: ${errorMessage(firstError ?? err)}`, { cause: firstError ?? err });
  } finally {
    clearTimeout(timer);
  }
  up = true;
  redis.on('ready', () => {
    if (!up) o.logger?.info({ redis: where, role: o.role }, 'redis connection restored');
    up = true;
  });
  return redis;
}

/** QUIT, bounded: a connection that cannot say goodbye (Redis down) is dropped. */
export async function quitConnection(redis: Redis, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([redis.quit(), new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
  } catch {
    // Already closed or unreachable: nothing to say goodbye to.
  } finally {
    clearTimeout(timer);
    redis.disconnect();
  }
}
