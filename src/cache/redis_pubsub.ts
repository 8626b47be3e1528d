import type { Redis } from 'ioredis';
import { errorMessage } from '../lib/errors.js';
import type { CacheLogger } from './redis_connection.js';

interface Handler {
  onMessage: (message: string) => void;
  onResync: (() => void) | undefined;
}

export interface RedisPubSub {
  subscribe(channel: string, handler: Handler): Promise<() => Promise<void>>;
}

/**
 * Subscriptions on the dedicated subscriber connection (a connection in subscriber mode cannot
 * send other commands). `channel` here is already prefixed. After a reconnect the channels are
 * subscribed again here rather than by ioredis, so that `onResync` runs only once Redis has
 * confirmed the subscription: a message published after that is delivered, one published before
 * is reflected in whatever the resyncing subscriber re-reads.
 */
export function createRedisPubSub(sub: Redis, logger: CacheLogger | undefined): RedisPubSub {
  const channels = new Map<string, Set<Handler>>();

  sub.on('message', (channel: string, message: string) => {
    for (const h of channels.get(channel) ?? []) {
      try {
        h.onMessage(message);
      } catch (err) {
        logger?.warn({ channel, error: errorMessage(err) }, 'cache subscriber failed on a message');
      }
    }
  });

  sub.on('ready', () => {
    if (channels.size === 0) return;
    sub.subscribe(...channels.keys()).then(
      () => {
        for (const set of channels.values()) for (const h of set) h.onResync?.();
      },
      // The connection dropped again: the next 'ready' retries.
      (err: unknown) => logger?.warn({ error: errorMessage(err) }, 'redis resubscribe failed; retrying on the next reconnect'),
    );
  });

  return {
    async subscribe(channel, handler) {
      let set = channels.get(channel);
      if (!set) {
        await sub.subscribe(channel);
        // Another subscribe to the same channel may have finished while this one waited.
        set = channels.get(channel) ?? new Set();
        channels.set(channel, set);
      }
      set.add(handler);
      return async () => {
        set.delete(handler);
        if (set.size > 0 || channels.get(channel) !== set) return;
        channels.delete(channel);
        await sub.unsubscribe(channel);
      };
    },
  };
}
