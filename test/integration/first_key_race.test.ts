import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createMemoryCache } from '../../src/cache/index.js';
import { parseConfig } from '../../src/config/index.js';
import { createTokenModule, type TokenModule } from '../../src/issuer/module.js';
import { systemClock } from '../../src/lib/clock.js';
import { openSqliteStore, type Store } from '../../src/store/index.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { tempDir } from '../helpers/temp_dir.js';

/**
 * Two replicas starting together on an empty store can each create a first signing key. Each
 * announces the key it created and re-reads the store once it listens, so both end up knowing
 * every key (each verifies the other's tokens at once) and signing with the same one.
 */
describe('replicas starting together on an empty store', () => {
  const opened: Array<{ store: Store; tokens: TokenModule }> = [];
  afterAll(async () => {
    for (const { store, tokens } of opened) {
      await tokens.stop();
      await store.close();
    }
  });

  it('end up knowing every first key and signing with the same one', async () => {
    const file = join(tempDir('pc-first-key'), 'portcullis.db');
    const config = parseConfig({ dev_issuer: { enabled: false }, store: { sqlite_file: file }, token_module: { kek: randomBytes(32).toString('base64url'), issuer: 'http://portcullis.test' } });
    const cache = createMemoryCache();
    const start = async () => {
      const store = openSqliteStore({ file });
      const tokens = await createTokenModule({ config, store, cache, clock: systemClock, metrics: createMetrics(), logger: createLogger('silent') });
      opened.push({ store, tokens });
      return tokens;
    };
    const [a, b] = await Promise.all([start(), start()]);
    await Promise.all([a!.start(), b!.start()]);
    const stored = (await opened[0]!.store.keys.list()).map((k) => k.kid).sort();
    expect(stored.length).toBeGreaterThanOrEqual(1);
    for (const t of [a!, b!]) expect(t.keyring.jwks().keys.map((k) => k.kid).sort()).toEqual(stored);
    expect((await a!.keyring.signer()).kid).toBe((await b!.keyring.signer()).kid);
    console.info(`first keys created by the two replicas: ${stored.length}`);
  });
});
