import { z } from 'zod';

/**
 * `upstream_providers`: external OpenID Connect providers users can sign in with ("Sign in with
 * …" on the login page), whose tokens services can exchange (RFC 8693), and whose refresh tokens
 * Portcullis can keep for a user (brokered tokens). Built by a factory because it shares the JWKS
 * cache settings and algorithm list with `issuers` (declared in schema.ts).
 */

/** Authorization request parameters Portcullis sets itself; `authorization_params` may not override them. */
const RESERVED_PARAMS = ['client_id', 'redirect_uri', 'response_type', 'response_mode', 'scope', 'state', 'nonce', 'code_challenge', 'code_challenge_method', 'request', 'request_uri'];

export const PROVIDER_ID = /^[a-z0-9][a-z0-9_-]{0,31}$/;

export function upstreamProvidersSchema<J extends z.ZodType, A extends readonly [string, ...string[]]>(jwks: J, algorithms: A) {
  const claims = z
    .object({
      email: z.string().min(1).default('email').describe('Claim holding the email address.'),
      email_verified: z.string().min(1).default('email_verified').describe('Claim telling whether the provider verified the email (must be the boolean `true` to count).'),
      name: z.string().min(1).default('name').describe('Claim holding the display name.'),
      roles: z.string().min(1).optional().describe('Claim (dotted path) holding roles given to users provisioned from this provider, beside `default_roles`; unset: none.'),
    })
    .strict()
    .prefault({});
  const provider = z
    .object({
      id: z.string().regex(PROVIDER_ID, 'must be 1-32 characters of a-z, 0-9, _ and -, starting with a letter or digit').describe('Stable identifier: in the callback URL `/oauth2/upstream/<id>/callback`, the store, metric labels and audit rows.'),
      name: z.string().min(1).max(64).describe('Label of the button on the login page ("Sign in with <name>").'),
      issuer: z.url().describe('Issuer URL of the provider; its discovery document, JWKS and endpoints are read from `<issuer>/.well-known/openid-configuration`. https in `mode: production`.'),
      client_id: z.string().min(1).describe('Client id of Portcullis at the provider.'),
      client_secret: z.string().min(1).optional().describe('Client secret at the provider. Env `PORTCULLIS_UPSTREAM_<ID>_CLIENT_SECRET` (id upper-cased, `-` as `_`). Set this or `client_secret_file`.'),
      client_secret_file: z.string().min(1).optional().describe('File holding the client secret (read once at start).'),
      client_auth: z.enum(['client_secret_basic', 'client_secret_post']).default('client_secret_basic').describe('How Portcullis authenticates at the provider token endpoint.'),
      scopes: z.array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/)).default(['openid', 'email', 'profile']).describe('Scopes requested at the provider (`openid` is required; add `offline_access` to receive a refresh token with `store_tokens`).'),
      authorization_params: z.record(z.string(), z.string()).default({}).describe('Further authorization request parameters (e.g. `prompt: consent`, `access_type: offline`); the protocol parameters Portcullis sets cannot be overridden.'),
      userinfo: z.boolean().default(true).describe('Also read claims from the userinfo endpoint after login (providers often leave email out of the ID token).'),
      claims: claims.describe('Claim names used to map the provider account to a user.'),
      link_by_verified_email: z.boolean().default(false).describe('Link a first-time account to the one existing user with the same email, when the provider says the email is verified. Trusts the provider to verify emails.'),
      auto_provision: z.boolean().default(false).describe('Create a user (without a password) for an account that maps to nobody. Off and unlinked: the login is refused (`unmapped_external_identity`).'),
      default_roles: z.array(z.string().min(1)).default([]).describe('Roles of users provisioned from this provider.'),
      store_tokens: z.boolean().default(false).describe('Keep the provider refresh token (encrypted under the key-encryption key) so `POST /admin/users/<id>/upstream/<provider>/token` can broker fresh upstream access tokens.'),
      token_exchange_clients: z.array(z.string().min(1)).default([]).describe('Confidential Portcullis clients allowed to exchange tokens of this provider at `/oauth2/token` (RFC 8693 token exchange); empty: none.'),
      token_exchange_audiences: z.array(z.string().min(1)).default([]).describe("Accepted `aud` of an exchanged token: an ID token's client at the provider, or a JWT access token's API. Empty: `client_id`."),
      algorithms: z.array(z.enum(algorithms)).min(1).default(['RS256', 'ES256', 'PS256', 'EdDSA'] as unknown as A[number][]).describe('Allow-list of JWS algorithms for ID tokens and JWT access tokens of this provider.'),
      fetch_timeout_ms: z.number().int().positive().default(5000).describe('Timeout of one request to the provider (discovery, token, userinfo).'),
      jwks: jwks.describe('JWKS cache of this provider (the same cache rules and metrics as `issuers`).'),
    })
    .strict();
  return z.array(provider);
}

type ProviderInput = {
  id: string;
  issuer: string;
  client_secret?: string | undefined;
  client_secret_file?: string | undefined;
  scopes: string[];
  authorization_params: Record<string, string>;
  token_exchange_clients: string[];
  jwks: { refresh_min_seconds: number; refresh_max_seconds: number };
};

interface Issues {
  addIssue(issue: { code: 'custom'; path: (string | number)[]; message: string }): void;
}

/** Cross-field checks of `upstream_providers` (called from the config's superRefine). */
export function checkUpstreamProviders(providers: readonly ProviderInput[], c: { production: boolean; tokenModuleIssuer: string | undefined; tokenModuleEnabled: boolean }, ctx: Issues): void {
  const ids = new Set<string>();
  const issuers = new Set<string>();
  providers.forEach((p, n) => {
    const at = (...path: (string | number)[]) => ['upstream_providers', n, ...path];
    if (ids.has(p.id)) ctx.addIssue({ code: 'custom', path: at('id'), message: `duplicate provider id ${p.id}` });
    ids.add(p.id);
    if (issuers.has(p.issuer)) ctx.addIssue({ code: 'custom', path: at('issuer'), message: `another provider has issuer ${p.issuer}` });
    issuers.add(p.issuer);
    if (!c.tokenModuleEnabled) ctx.addIssue({ code: 'custom', path: at('id'), message: 'upstream providers need the token module (token_module.enabled: true)' });
    if (c.production && !p.issuer.startsWith('https://')) ctx.addIssue({ code: 'custom', path: at('issuer'), message: 'must be an https URL in mode: production' });
    if (c.tokenModuleIssuer && p.issuer.replace(/\/$/, '') === c.tokenModuleIssuer.replace(/\/$/, '')) ctx.addIssue({ code: 'custom', path: at('issuer'), message: 'is the token module itself' });
    if ((p.client_secret === undefined) === (p.client_secret_file === undefined)) ctx.addIssue({ code: 'custom', path: at('client_secret'), message: 'set exactly one of client_secret (or its env variable) and client_secret_file' });
    if (!p.scopes.includes('openid')) ctx.addIssue({ code: 'custom', path: at('scopes'), message: 'must include openid' });
    for (const key of Object.keys(p.authorization_params)) {
      if (RESERVED_PARAMS.includes(key)) ctx.addIssue({ code: 'custom', path: at('authorization_params', key), message: 'is set by Portcullis and cannot be configured' });
    }
    if (p.jwks.refresh_min_seconds > p.jwks.refresh_max_seconds) ctx.addIssue({ code: 'custom', path: at('jwks', 'refresh_min_seconds'), message: 'must not exceed refresh_max_seconds' });
    if (new Set(p.token_exchange_clients).size !== p.token_exchange_clients.length) ctx.addIssue({ code: 'custom', path: at('token_exchange_clients'), message: 'lists a client twice' });
  });
}

/** The env variable that overrides a provider's client secret. */
export const upstreamSecretEnv = (id: string): string => `PORTCULLIS_UPSTREAM_${id.toUpperCase().replace(/-/g, '_')}_CLIENT_SECRET`;
