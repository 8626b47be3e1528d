import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import Provider, { type ClientMetadata } from 'oidc-provider';

/**
 * A real OpenID provider (panva's oidc-provider, the certified OP) on a free loopback port, as the
 * external identity provider of the tests. Its own login and consent pages are replaced by a tiny
 * handler that signs in as the account chosen with `loginAs` (or denies), through the library's
 * `interactionDetails` / `interactionFinished` API — the browser still walks every redirect.
 */

export interface IdpAccount {
  email?: string;
  email_verified?: boolean;
  name?: string;
  groups?: string[];
}

/** The API whose audience JWT access tokens of this provider carry (RFC 8707 resource indicator). */
export const IDP_API = 'https://api.upstream.example';

export interface UpstreamIdp {
  issuer: string;
  /** Set by `configure`; until then every request is answered 503. */
  provider: Provider;
  accounts: Map<string, IdpAccount>;
  /** Who the next login signs in as; `deny` answers the next authorization with access_denied. */
  loginAs(sub: string | 'deny'): void;
  /** Interactions handled so far (each is one visit to the IdP's login). */
  interactions: number;
  /** Starts answering as an OpenID provider with these clients (their redirect URIs may name servers started after `startUpstreamIdp`). */
  configure(clients: ClientMetadata[]): Promise<void>;
  close(): Promise<void>;
}

/** Binds the IdP's port first (its issuer URL is then known); `configure` makes it an OpenID provider. */
export async function startUpstreamIdp(): Promise<UpstreamIdp> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let callback: ((req: IncomingMessage, res: ServerResponse) => unknown) | undefined;
  server.on('request', (req, res) => {
    if (!callback) {
      res.statusCode = 503;
      res.end();
      return;
    }
    void callback(req, res);
  });
  const idp = { issuer, interactions: 0, accounts: new Map<string, IdpAccount>() } as UpstreamIdp;
  idp.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  idp.configure = async (clients) => {
    callback = await createIdp(idp, clients);
  };
  return idp;
}

async function createIdp(idp: UpstreamIdp, clients: ClientMetadata[]): Promise<(req: IncomingMessage, res: ServerResponse) => unknown> {
  const { issuer } = idp;
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: 'idp-key-1', alg: 'RS256', use: 'sig' };
  const accounts = idp.accounts;

  const provider = new Provider(issuer, {
    clients,
    jwks: { keys: [jwk] },
    cookies: { keys: ['upstream-idp-test-cookie-key'] },
    findAccount: async (_ctx, sub) => {
      const account = accounts.get(sub);
      return account && { accountId: sub, claims: async () => ({ sub, ...account }) };
    },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
    scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      revocation: { enabled: true },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => undefined as unknown as string,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resource) => {
          if (resource !== IDP_API) throw new Error('unknown resource');
          return { scope: 'api:read', audience: IDP_API, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } };
        },
      },
    },
    extraTokenClaims: async () => ({ roles: ['viewer'] }),
    ttl: { AccessToken: 600, AuthorizationCode: 60, ClientCredentials: 600, IdToken: 600, Grant: 3600, Interaction: 600, RefreshToken: 3600, Session: 3600 },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  });
  provider.on('server_error', (_ctx, err) => console.error('upstream IdP server_error', err));

  let next: string = 'deny';
  idp.provider = provider;
  idp.loginAs = (sub) => {
    next = sub;
  };

  const handleInteraction = async (req: IncomingMessage, res: ServerResponse) => {
    idp.interactions++;
    const details = await provider.interactionDetails(req, res);
    if (next === 'deny') {
      await provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'the user said no' }, { mergeWithLastSubmission: false });
      return;
    }
    if (details.prompt.name === 'login') {
      await provider.interactionFinished(req, res, { login: { accountId: next } }, { mergeWithLastSubmission: false });
      return;
    }
    const accountId = details.session!.accountId;
    const grant = details.grantId ? (await provider.Grant.find(details.grantId))! : new provider.Grant({ accountId, clientId: String(details.params.client_id) });
    const missing = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
    await provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true });
  };

  const serve = provider.callback();
  return (req, res) => {
    if (!req.url?.startsWith('/interaction/')) return serve(req, res);
    return handleInteraction(req, res).catch((err: unknown) => {
      res.statusCode = 500;
      res.end(String(err));
    });
  };
}
