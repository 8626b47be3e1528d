import { PortcullisError } from '../lib/errors.js';
import type { ClientAuthMethod, ClientRecord, ClientType, GrantType } from '../store/index.js';
import type { IssuerContext } from './context.js';
import { randomToken, sha256 } from './secrets.js';

export interface NewClientInput {
  clientId: string;
  name?: string | undefined;
  type: ClientType;
  authMethod?: ClientAuthMethod | undefined;
  grantTypes: GrantType[];
  redirectUris: string[];
  scopes: string[];
  roles: string[];
  firstParty: boolean;
  jwks?: { keys: Record<string, unknown>[] } | undefined;
}

const CLIENT_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Registers a client. A secret (for the secret methods) is generated here, returned once and
 * stored only as a hash. Redirect URIs must be absolute, without fragment, and https unless they
 * point at loopback (native apps, RFC 8252) — exact matching is enforced at /oauth2/authorize.
 */
export async function addClient(ctx: IssuerContext, c: NewClientInput): Promise<{ client: ClientRecord; secret: string | undefined }> {
  const fail = (msg: string) => new PortcullisError('ERR_BAD_REQUEST', msg);
  if (!CLIENT_ID.test(c.clientId)) throw fail('client id must be 1-128 characters of letters, digits and . _ : -');
  if (await ctx.store.clients.byId(c.clientId)) throw fail(`client ${c.clientId} already exists`);
  const authMethod = c.authMethod ?? (c.type === 'public' ? 'none' : 'client_secret_basic');
  if (c.type === 'public' && authMethod !== 'none') throw fail('a public client authenticates with none');
  if (c.type === 'confidential' && authMethod === 'none') throw fail('a confidential client needs an authentication method other than none');
  if (c.type === 'public' && c.grantTypes.includes('client_credentials')) throw fail('a public client cannot use client_credentials');
  if (authMethod === 'private_key_jwt' && !c.jwks?.keys.length) throw fail('private_key_jwt needs the client public keys (--jwks-file)');
  if (c.grantTypes.includes('authorization_code') && c.redirectUris.length === 0) throw fail('authorization_code needs at least one redirect URI');
  for (const uri of c.redirectUris) {
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      throw fail(`redirect URI ${uri} is not an absolute URL`);
    }
    if (url.hash) throw fail(`redirect URI ${uri} must not have a fragment`);
    const loopback = ['127.0.0.1', '[::1]', 'localhost'].includes(url.hostname);
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) throw fail(`redirect URI ${uri} must be https (http only on loopback)`);
  }
  if (c.jwks) for (const k of c.jwks.keys) if ('d' in k) throw fail('the client JWKS must hold public keys only');
  const secret = authMethod === 'client_secret_basic' || authMethod === 'client_secret_post' ? randomToken() : undefined;
  const client: ClientRecord = {
    clientId: c.clientId,
    name: c.name ?? c.clientId,
    type: c.type,
    authMethod,
    secretHash: secret ? sha256(secret) : null,
    jwks: c.jwks ?? null,
    grantTypes: [...new Set(c.grantTypes)],
    redirectUris: c.redirectUris,
    scopes: [...new Set(c.scopes)],
    roles: c.roles,
    firstParty: c.firstParty,
    createdAt: ctx.clock.now(),
  };
  await ctx.store.clients.create(client);
  await ctx.audit.record('admin.client_added', 'success', { clientId: client.clientId, details: { type: client.type, auth_method: authMethod, grant_types: client.grantTypes } });
  return { client, secret };
}

export async function removeClient(ctx: IssuerContext, clientId: string): Promise<boolean> {
  const removed = await ctx.store.clients.remove(clientId);
  // Its refresh families end too, so a client later registered under the same id inherits nothing.
  const revoked = removed ? await ctx.store.refresh.revokeClient(clientId, ctx.clock.now(), 'client_removed') : 0;
  if (removed) await ctx.audit.record('admin.client_removed', 'success', { clientId, details: { refresh_families_revoked: revoked } });
  return removed;
}
