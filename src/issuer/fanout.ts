import type { Cache } from '../cache/index.js';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';

/**
 * Cross-replica notices of token-module changes, over the cache's pub/sub: an access token
 * revoked, the signing keys rotated. The store stays the truth: a message carries an id only
 * (a `jti`, a `kid`; never a token), is sent after the store write, and a receiver re-reads the
 * store before acting on it. A lost message (Redis down, subscriber reconnecting) costs at most
 * one reload period (`token_module.key_rotation.reload_seconds`), and after a reconnect the
 * receiver re-reads everything at once (`resync`).
 *
 * A revoked refresh-token family needs no message: families live only in the shared store, which
 * every replica reads on each refresh and introspection.
 */
export interface FanOut {
  /** After the store recorded the revocation of access token `jti`. Never throws. */
  revoked(jti: string): Promise<void>;
  /** After a rotation was written to the store (new key `kid`). Never throws. */
  keysChanged(kid: string): Promise<void>;
  /** Subscribes this process; returns the function that stops listening. */
  listen(l: FanOutListener): Promise<() => Promise<void>>;
}

export interface FanOutListener {
  revoked(jti: string): Promise<void>;
  keysChanged(): Promise<void>;
  /** Messages may have been lost: re-read keys and revocations from the store. */
  resync(): Promise<void>;
}

export const REVOCATIONS_CHANNEL = 'token-module:revocations';
export const KEYS_CHANNEL = 'token-module:keys';

/** jtis are UUIDs, kids JWK thumbprints (base64url); anything else is not ours. */
const ID = /^[A-Za-z0-9_.~-]{1,200}$/;

export function createFanOut(o: { cache: Cache; metrics: Metrics; logger: Logger }): FanOut {
  const publish = async (channel: string, id: string) => {
    try {
      await o.cache.publish(channel, id);
    } catch (err) {
      o.metrics.cacheErrors.inc({ operation: 'publish' });
      o.logger.error({ channel, error: errorMessage(err) }, 'fan-out publish failed; other replicas apply the change on their next reload');
    }
  };
  const guarded = (what: string, fn: () => Promise<void>) => {
    fn().catch((err: unknown) => o.logger.error({ channel: what, error: errorMessage(err) }, 'applying a fan-out message failed; the next reload retries'));
  };

  return {
    revoked: (jti) => publish(REVOCATIONS_CHANNEL, jti),
    keysChanged: (kid) => publish(KEYS_CHANNEL, kid),
    async listen(l) {
      let resyncing: Promise<void> | undefined;
      // Both channels ride one subscriber connection: one reconnect, one re-read.
      const resync = () => {
        if (resyncing) return;
        resyncing = l
          .resync()
          .catch((err: unknown) => o.logger.error({ error: errorMessage(err) }, 'resync after a cache reconnect failed; the next reload retries'))
          .finally(() => (resyncing = undefined));
      };
      const accept = (channel: string, fn: (id: string) => Promise<void>) => (message: string) => {
        if (!ID.test(message)) {
          o.logger.warn({ channel }, 'ignored a malformed fan-out message');
          return;
        }
        guarded(channel, () => fn(message));
      };
      const stops = [
        await o.cache.subscribe(REVOCATIONS_CHANNEL, accept(REVOCATIONS_CHANNEL, l.revoked), resync),
        await o.cache.subscribe(KEYS_CHANNEL, accept(KEYS_CHANNEL, () => l.keysChanged()), resync),
      ];
      return async () => {
        for (const stop of stops) await stop();
      };
    },
  };
}
