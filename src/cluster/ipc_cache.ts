import type { Cache } from '../cache/index.js';
import { PortcullisError } from '../lib/errors.js';
import type { CacheOp, FromWorker, ToWorker } from './messages.js';

export interface IpcChannel {
  send(message: FromWorker): void;
  onMessage(listener: (message: ToWorker) => void): void;
}

/**
 * The memory cache of the primary, reached from a cluster worker over IPC: a DPoP proof `jti` seen
 * by one worker is a replay on every other. Each call is answered by the primary or fails with
 * `ERR_CACHE` after `timeoutMs` (the callers treat that as they treat an unreachable Redis).
 * With `cache.driver: redis` workers connect to Redis themselves and this is not used.
 */
export function createIpcCache(channel: IpcChannel, timeoutMs: number): Cache {
  let nextId = 1;
  let closed = false;
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }>();
  const subscribers = new Map<string, Set<(message: string) => void>>();

  const call = (request: CacheOp): Promise<unknown> => {
    if (closed) return Promise.reject(new PortcullisError('ERR_CACHE', 'cache is closed'));
    const id = nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new PortcullisError('ERR_CACHE', `the primary did not answer a cache ${request.op} within ${timeoutMs} ms`));
      }, timeoutMs);
      pending.set(id, { resolve, reject, timer });
      try {
        channel.send({ pc: 'cache.req', id, request });
      } catch (err) {
        clearTimeout(timer);
        pending.delete(id);
        reject(new PortcullisError('ERR_CACHE', `cannot reach the primary: ${(err as Error).message}`));
      }
    });
  };

  channel.onMessage((m: ToWorker) => {
    if (m.pc === 'cache.res') {
      const p = pending.get(m.id);
      if (!p) return;
      pending.delete(m.id);
      clearTimeout(p.timer);
      if (m.ok) p.resolve(m.value);
      else p.reject(new PortcullisError('ERR_CACHE', m.error));
    } else if (m.pc === 'cache.msg') {
      for (const fn of subscribers.get(m.channel) ?? []) fn(m.message);
    }
  });

  return {
    driver: 'memory',
    addOnce: async (key, ttlMs) => (await call({ op: 'addOnce', key, ttlMs })) === true,
    increment: async (key, windowMs) => (await call({ op: 'increment', key, windowMs })) as { count: number; resetMs: number },
    publish: async (ch, message) => {
      await call({ op: 'publish', channel: ch, message });
    },
    async subscribe(ch, onMessage) {
      let set = subscribers.get(ch);
      if (!set) {
        set = new Set();
        subscribers.set(ch, set);
        await call({ op: 'subscribe', channel: ch });
      }
      set.add(onMessage);
      return async () => void subscribers.get(ch)?.delete(onMessage);
    },
    ping: async () => {
      await call({ op: 'ping' });
    },
    async close() {
      closed = true;
      for (const [id, p] of pending) {
        clearTimeout(p.timer);
        p.reject(new PortcullisError('ERR_CACHE', 'cache is closed'));
        pending.delete(id);
      }
    },
  };
}

/** The primary's side: answers one worker's cache request from its own cache. */
export async function answerCacheRequest(cache: Cache, request: CacheOp, forward: (channel: string, message: string) => void): Promise<unknown> {
  switch (request.op) {
    case 'addOnce':
      return cache.addOnce(request.key, request.ttlMs);
    case 'increment':
      return cache.increment(request.key, request.windowMs);
    case 'publish':
      return cache.publish(request.channel, request.message);
    case 'subscribe':
      await cache.subscribe(request.channel, (message) => forward(request.channel, message));
      return undefined;
    case 'ping':
      return cache.ping();
  }
}
