import type { Redis } from 'ioredis';
import { errorMessage, PortcullisError } from '../lib/errors.js';
import type { Cache } from './cache.js';
import { openRedisConnection, quitConnection, type CacheLogger } from './redis_connection.js';
import { createRedisPubSub } from './redis_pubsub.js';

export interface RedisCacheOptions {
  /** `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS. */
  url: string;
  /** Prefix of every key and channel (`portcullis:`), so deployments can share a Redis. */
  keyPrefix?: string;
  commandTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** Connection names in `CLIENT LIST` are `<connectionName>:commands` and `<connectionName>:subscriber`. */
  connectionName?: string;
  logger?: CacheLogger;
}

/**
 * A fixed window counted in one atomic step: INCR, and an expiry set only when the key has none
 * (the window's first event, or a key left without one), so later events never extend it.
 */
const INCREMENT = `
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}`;

type WithIncrement = Redis & { portcullisIncrement(key: string, windowMs: number): Promise<[number, number]> };

/**
 * The cache several replicas share. Two connections: one for commands, one in subscriber mode.
 * Every failure (unreachable, timed out, closed) is ERR_CACHE within `commandTimeoutMs`.
 */
export async function createRedisCache(o: RedisCacheOptions): Promise<Cache> {
  const prefix = o.keyPrefix ?? 'portcullis:';
  const commandTimeoutMs = o.commandTimeoutMs ?? 500;
  const common = { url: o.url, name: o.connectionName ?? 'portcullis', commandTimeoutMs, connectTimeoutMs: o.connectTimeoutMs ?? 5_000, logger: o.logger };
  const redis = (await openRedisConnection({ ...common, role: 'commands' })) as WithIncrement;
  let sub: Redis;
  try {
    sub = await openRedisConnection({ ...common, role: 'subscriber' });
  } catch (err) {
    redis.disconnect();
    throw err;
  }
  redis.defineCommand('portcullisIncrement', { numberOfKeys: 1, lua: INCREMENT });
  const pubsub = createRedisPubSub(sub, o.logger);
  let closed = false;

  async function run<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    if (closed) throw new PortcullisError('ERR_CACHE', 'cache is closed');
    try {
      return await fn();
    } catch (cause) {
      throw new PortcullisError('ERR_CACHE', `redis ${operation} failed: ${errorMessage(cause)}`, { cause });
    }
  }

  return {
    driver: 'redis',
    addOnce: (key, ttlMs) => run('addOnce', async () => (await redis.set(prefix + key, '1', 'PX', ttlMs, 'NX')) === 'OK'),
    increment: (key, windowMs) =>
      run('increment', async () => {
        const [count, resetMs] = await redis.portcullisIncrement(prefix + key, windowMs);
        return { count: Number(count), resetMs: Number(resetMs) };
      }),
    publish: (channel, message) =>
      run('publish', async () => {
        await redis.publish(prefix + channel, message);
      }),
    subscribe: (channel, onMessage, onResync) =>
      run('subscribe', async () => {
        const stop = await pubsub.subscribe(prefix + channel, { onMessage, onResync });
        return () => run('unsubscribe', stop);
      }),
    ping: () =>
      run('ping', async () => {
        await redis.ping();
        if (sub.status !== 'ready') throw new Error(`the subscriber connection is ${sub.status}`);
      }),
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all([quitConnection(redis, commandTimeoutMs), quitConnection(sub, commandTimeoutMs)]);
    },
  };
}
