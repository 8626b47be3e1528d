/**
 * The port for shared short-lived state: one-time values (DPoP proof `jti`s), fixed-window
 * counters (rate limits) and fan-out messages (revocations, key rotations). The core owns it;
 * memory (one process, the default) and Redis (several replicas) implement it, and one contract
 * suite runs against each.
 *
 * Keys are chosen by the caller and namespaced by purpose (`dpop:`, `rl:login:`); they never hold
 * a secret in clear (hash tokens before using them as keys). Every failure (closed, unreachable,
 * timed out) is a `PortcullisError` with code `ERR_CACHE`, raised within a bounded time.
 */
export interface Cache {
  readonly driver: 'memory' | 'redis';
  /**
   * Records `key` for `ttlMs` unless it is already recorded: true when this call recorded it,
   * false when it was there (a replay). One atomic step, so two concurrent calls never both win.
   */
  addOnce(key: string, ttlMs: number): Promise<boolean>;
  /**
   * Counts one event in a fixed window of `windowMs` that starts with the window's first event;
   * returns the count including this one and the milliseconds until the window ends.
   */
  increment(key: string, windowMs: number): Promise<{ count: number; resetMs: number }>;
  /** Sends `message` to every subscriber of `channel`, in this process and every replica. */
  publish(channel: string, message: string): Promise<void>;
  /**
   * Calls `onMessage` for each message published on `channel`; returns an unsubscribe function.
   * Delivery is at most once: messages sent while a subscriber is disconnected are lost, so after
   * it is subscribed again `onResync` runs (Redis, after a reconnect; never for memory) and the
   * subscriber re-reads whatever state the messages describe.
   */
  subscribe(channel: string, onMessage: (message: string) => void, onResync?: () => void): Promise<() => Promise<void>>;
  /** Throws when the cache cannot answer (closed, unreachable, or its subscriber connection is down). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
