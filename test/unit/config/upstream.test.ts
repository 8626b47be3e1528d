import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, parseConfig } from '../../../src/config/index.js';
import { isPortcullisError } from '../../../src/lib/errors.js';
import { tempDir } from '../../helpers/temp_dir.js';

const provider = (over: Record<string, unknown> = {}) => ({ id: 'corp', name: 'Corp SSO', issuer: 'https://login.corp.example', client_id: 'portcullis', client_secret: 's3cret', ...over });

function configError(raw: unknown): string {
  try {
    parseConfig(raw);
  } catch (err) {
    if (isPortcullisError(err, 'ERR_CONFIG_INVALID')) return err.message;
    throw err;
  }
  throw new Error('expected ERR_CONFIG_INVALID');
}

describe('upstream_providers configuration', () => {
  it('fills safe defaults: no linking, no provisioning, no stored tokens, no token exchange', () => {
    const [p] = parseConfig({ upstream_providers: [provider()] }).upstream_providers;
    expect(p).toMatchObject({
      scopes: ['openid', 'email', 'profile'],
      client_auth: 'client_secret_basic',
      userinfo: true,
      claims: { email: 'email', email_verified: 'email_verified', name: 'name' },
      link_by_verified_email: false,
      auto_provision: false,
      default_roles: [],
      store_tokens: false,
      token_exchange_clients: [],
      token_exchange_audiences: [],
      authorization_params: {},
    });
    expect(p!.claims.roles).toBeUndefined();
    expect(p!.jwks).toMatchObject({ cooldown_seconds: 30, refresh_max_seconds: 3600 });
  });

  it('refuses duplicate ids and issuers, a missing or doubled secret, and scopes without openid', () => {
    const message = configError({
      upstream_providers: [
        provider(),
        provider({ issuer: 'https://other.example' }),
        provider({ id: 'twin' }),
        provider({ id: 'nosecret', issuer: 'https://a.example', client_secret: undefined }),
        provider({ id: 'both', issuer: 'https://b.example', client_secret_file: '/run/secret' }),
        provider({ id: 'noopenid', issuer: 'https://c.example', scopes: ['email'] }),
      ],
    });
    expect(message).toContain('upstream_providers.1.id: duplicate provider id corp');
    expect(message).toContain('upstream_providers.2.issuer: another provider has issuer https://login.corp.example');
    expect(message).toContain('upstream_providers.3.client_secret: set exactly one');
    expect(message).toContain('upstream_providers.4.client_secret: set exactly one');
    expect(message).toContain('upstream_providers.5.scopes: must include openid');
  });

  it('refuses ids unfit for URLs and labels, protocol parameters in authorization_params, and a client listed twice', () => {
    const message = configError({ upstream_providers: [provider({ id: 'Corp SSO', authorization_params: { prompt: 'consent', state: 'fixed', redirect_uri: 'https://evil' }, token_exchange_clients: ['a', 'a'] })] });
    expect(message).toContain('upstream_providers.0.id: must be 1-32 characters');
    expect(message).toContain('upstream_providers.0.authorization_params.state: is set by Portcullis');
    expect(message).toContain('upstream_providers.0.authorization_params.redirect_uri: is set by Portcullis');
    expect(message).not.toContain('authorization_params.prompt');
    expect(message).toContain('upstream_providers.0.token_exchange_clients: lists a client twice');
  });

  it('refuses an http provider in production, and the token module itself as a provider', () => {
    const production = { mode: 'production', dev_issuer: { enabled: false }, token_module: { issuer: 'https://auth.example', kek: 'A'.repeat(43) } };
    expect(configError({ ...production, upstream_providers: [provider({ issuer: 'http://login.corp.example' })] })).toContain('upstream_providers.0.issuer: must be an https URL in mode: production');
    expect(configError({ ...production, upstream_providers: [provider({ issuer: 'https://auth.example' })] })).toContain('upstream_providers.0.issuer: is the token module itself');
    expect(parseConfig({ upstream_providers: [provider({ issuer: 'http://127.0.0.1:8080' })] }).upstream_providers[0]!.issuer).toBe('http://127.0.0.1:8080');
  });

  it('refuses upstream providers without the token module', () => {
    expect(configError({ token_module: { enabled: false }, upstream_providers: [provider()] })).toContain('upstream providers need the token module');
  });

  it('takes a client secret from PORTCULLIS_UPSTREAM_<ID>_CLIENT_SECRET', () => {
    const file = join(tempDir('pc-upstream-config'), 'config.yaml');
    writeFileSync(file, 'upstream_providers:\n  - id: corp-eu\n    name: Corp EU\n    issuer: https://eu.corp.example\n    client_id: portcullis\n');
    const c = loadConfig({ file, env: { PORTCULLIS_UPSTREAM_CORP_EU_CLIENT_SECRET: 'from-env' } });
    expect(c.upstream_providers[0]!.client_secret).toBe('from-env');
    expect(() => loadConfig({ file, env: {} })).toThrow(/client_secret: set exactly one/);
  });
});
