import type { ClientRecord } from '../store/index.js';
import type { IssuerContext } from './context.js';
import { OAuthError } from './errors.js';
import { audienceFor, grantedScope } from './scope.js';

/** A validated authorization request (RFC 6749 §4.1.1 + PKCE + OIDC). */
export interface AuthorizationRequest {
  clientId: string;
  redirectUri: string;
  scope: string;
  state: string | null;
  nonce: string | null;
  codeChallenge: string;
  resource: string | null;
}

/** Errors shown on our own page: the redirect URI cannot be trusted, so nothing is redirected. */
export class UntrustedRedirect extends Error {}

export type Validated = { ok: true; request: AuthorizationRequest; client: ClientRecord } | { ok: false; redirect: string };

const CHALLENGE = /^[A-Za-z0-9_-]{43}$/;

/**
 * Checks an authorization request. The client and its exact redirect URI are checked first (a
 * failure there shows an error page); every later problem is sent back to the redirect URI as
 * `error`, with `state` and `iss` (RFC 9207).
 */
export async function validateAuthorizationRequest(ctx: IssuerContext, q: Record<string, string | undefined>): Promise<Validated> {
  const client = q.client_id ? await ctx.store.clients.byId(q.client_id) : undefined;
  if (!client) throw new UntrustedRedirect('unknown client_id');
  if (!q.redirect_uri || !client.redirectUris.includes(q.redirect_uri)) throw new UntrustedRedirect('redirect_uri is not registered for this client');
  const back = (error: string, description: string) => ({ ok: false as const, redirect: errorRedirect(ctx, q.redirect_uri!, q.state ?? null, error, description) });
  if (q.request !== undefined || q.request_uri !== undefined) return back('request_not_supported', 'request objects are not supported');
  if (q.response_type !== 'code') return back('unsupported_response_type', 'response_type must be code');
  if (!client.grantTypes.includes('authorization_code')) return back('unauthorized_client', 'the client may not use authorization_code');
  if (!q.code_challenge || q.code_challenge_method !== 'S256' || !CHALLENGE.test(q.code_challenge)) return back('invalid_request', 'PKCE is required: code_challenge with code_challenge_method=S256');
  if ((q.state?.length ?? 0) > 1024 || (q.nonce?.length ?? 0) > 1024) return back('invalid_request', 'state and nonce must be at most 1024 characters');
  if (q.prompt?.split(' ').includes('none')) return back('login_required', 'the user must log in');
  let scope: string;
  let resource: string | null = null;
  try {
    scope = grantedScope(client, q.scope ?? '', []).join(' ');
    if (q.resource !== undefined) resource = audienceFor(ctx.settings, q.resource) === ctx.settings.audience ? null : q.resource;
  } catch (err) {
    if (err instanceof OAuthError) return back(err.error, err.description);
    throw err;
  }
  return {
    ok: true,
    client,
    request: { clientId: client.clientId, redirectUri: q.redirect_uri, scope, state: q.state ?? null, nonce: q.nonce ?? null, codeChallenge: q.code_challenge, resource },
  };
}

export function errorRedirect(ctx: IssuerContext, redirectUri: string, state: string | null, error: string, description: string): string {
  return withParams(redirectUri, { error, error_description: description, state, iss: ctx.issuer() });
}

export function withParams(uri: string, params: Record<string, string | null>): string {
  const url = new URL(uri);
  for (const [k, v] of Object.entries(params)) if (v !== null) url.searchParams.set(k, v);
  return url.toString();
}
