import { describe, expect, it } from 'vitest';
import { workerConfig } from '../../../src/cluster/pool.js';
import { parseConfig } from '../../../src/config/index.js';

describe('workerConfig (what the primary sends each cluster worker)', () => {
  it('leaves out the secrets only the primary uses and keeps everything the decision path needs', () => {
    const config = parseConfig({
      workers: 2,
      admin: { api_key: 'admin-key-0123456789abcdef' },
      token_module: { kek: 'k'.repeat(43) },
      cache: { driver: 'redis', url: 'redis://:cache-password@127.0.0.1:6379' },
      upstream_providers: [{ id: 'corp', name: 'Corp', issuer: 'https://idp.example', client_id: 'portcullis', client_secret: 'upstream-secret' }],
    });
    const sent = workerConfig(config);
    const text = JSON.stringify(sent);
    for (const secret of ['admin-key-0123456789abcdef', 'k'.repeat(43), 'upstream-secret']) expect(text).not.toContain(secret);
    expect(sent.cache.url).toBe('redis://:cache-password@127.0.0.1:6379');
    expect(sent.grpc).toEqual(config.grpc);
    expect(sent.policies).toEqual(config.policies);
    expect(sent.issuers).toEqual(config.issuers);
    expect(sent.dpop).toEqual(config.dpop);
    expect(sent.upstream_providers[0]!.client_id).toBe('portcullis');
  });
});
