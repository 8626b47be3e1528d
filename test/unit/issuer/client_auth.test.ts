import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMemoryCache } from '../../../src/cache/index.js';
import { parseConfig } from '../../../src/config/index.js';
import { authenticateClient, CLIENT_CACHE_TTL_MS } from '../../../src/issuer/client_auth.js';
import { addClient, removeClient } from '../../../src/issuer/clients.js';
import type { IssuerContext } from '../../../src/issuer/context.js';
import { InvalidClient } from '../../../src/issuer/errors.js';
import { createTokenModule, type TokenModule } from '../../../src/issuer/module.js';
import { createManualClock } from '../../../src/lib/clock.js';
import { openMemoryStore, type Store } from '../../../src/store/index.js';
import { createLogger } from '../../../src/telemetry/logger.js';
import { createMetrics } from '../../../src/telemetry/metrics.js';

const basic = (id: string, secret: string) => ({ authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`, body: {} });
const AUD = ['http://auth.test/oauth2/token'];

/** Client authentication on a real token module (in-memory SQLite store, manual clock). */
describe('client authentication and its client-record cache', () => {
  let store: Store;
  let tokens: TokenModule;
  let ctx: IssuerContext;
  const clock = createManualClock();

  beforeEach(async () => {
    store = openMemoryStore();
    const config = parseConfig({ dev_issuer: { enabled: false }, store: { driver: 'memory' }, token_module: { kek: randomBytes(32).toString('base64url') } });
    tokens = await createTokenModule({ config, store, cache: createMemoryCache({ clock }), clock, metrics: createMetrics(), logger: createLogger('silent') });
    tokens.setIssuer('http://auth.test');
    ctx = tokens.ctx;
  });
  afterEach(async () => {
    await tokens.stop();
    await store.close();
  });

  const add = async (clientId: string) => (await addClient(ctx, { clientId, type: 'confidential', grantTypes: ['client_credentials'], scopes: ['read'], roles: [], redirectUris: [], firstParty: false })).secret!;
  const refused = (p: Promise<unknown>) => p.then(() => 'accepted', (err: unknown) => (err instanceof InvalidClient ? err.reason : `unexpected: ${String(err)}`));

  it('checks the secret on every request, also when the record comes from the cache', async () => {
    const secret = await add('svc');
    expect((await authenticateClient(ctx, basic('svc', secret), AUD)).clientId).toBe('svc');
    expect(await refused(authenticateClient(ctx, basic('svc', 'wrong'), AUD))).toBe('invalid_secret');
    expect(await refused(authenticateClient(ctx, basic('svc', secret.slice(0, -1)), AUD))).toBe('invalid_secret');
    expect((await authenticateClient(ctx, basic('svc', secret), AUD)).clientId).toBe('svc');
  });

  it(`refuses a removed client once more than ${CLIENT_CACHE_TTL_MS} ms have passed since its record was read`, async () => {
    const secret = await add('gone');
    expect((await authenticateClient(ctx, basic('gone', secret), AUD)).clientId).toBe('gone');
    expect(await removeClient(ctx, 'gone')).toBe(true);
    clock.advance(CLIENT_CACHE_TTL_MS + 1);
    expect(await refused(authenticateClient(ctx, basic('gone', secret), AUD))).toBe('unknown_client');
  });

  it('does not remember unknown clients: one registered after a failed attempt authenticates at once', async () => {
    expect(await refused(authenticateClient(ctx, basic('late', 'x'), AUD))).toBe('unknown_client');
    const secret = await add('late');
    expect((await authenticateClient(ctx, basic('late', secret), AUD)).clientId).toBe('late');
  });
});
