import { createLocalJWKSet, decodeJwt, jwtVerify, type JSONWebKeySet } from 'jose';
import { LRUCache } from 'lru-cache';
import type { ClientAuthMethod, ClientRecord, Store } from '../store/index.js';
import { nowSeconds, type IssuerContext } from './context.js';
import { InvalidClient, InvalidRequest } from './errors.js';
import { safeEqual, sha256 } from './secrets.js';

export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
export const CLIENT_ASSERTION_ALGS = ['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA'];
/** A client assertion may not live longer than this. */
const MAX_ASSERTION_LIFETIME_S = 300;
/**
 * How long a client record read for authentication is reused. Services ask for tokens in bursts
 * (thousands a second) and a primary-key read per request was a sixth of the token endpoint's CPU;
 * a removed client or a changed secret takes effect within this time on every replica.
 */
export const CLIENT_CACHE_TTL_MS = 1000;

const clientCaches = new WeakMap<Store, LRUCache<string, ClientRecord>>();

/** The client record, from a per-store cache of found clients for CLIENT_CACHE_TTL_MS (unknown ids are always read). */
async function clientById(ctx: IssuerContext, clientId: string): Promise<ClientRecord | undefined> {
  let cache = clientCaches.get(ctx.store);
  if (!cache) {
    cache = new LRUCache<string, ClientRecord>({ max: 1000, ttl: CLIENT_CACHE_TTL_MS, ttlResolution: 0, perf: { now: () => ctx.clock.now() }, ttlAutopurge: false });
    clientCaches.set(ctx.store, cache);
  }
  const hit = cache.get(clientId);
  if (hit) return hit;
  const client = await ctx.store.clients.byId(clientId);
  if (client) cache.set(clientId, client);
  return client;
}

/** The credentials a request carried, in whichever way the client chose to send them. */
export interface ClientCredentials {
  authorization?: string | undefined;
  body: Record<string, string | undefined>;
}

/**
 * RFC 6749 §2.3 / OIDC Core §9 client authentication: `client_secret_basic`,
 * `client_secret_post`, `private_key_jwt`, or `none` for public clients. The method used must be
 * the one the client was registered with; using two at once is an invalid request.
 * `audiences` are the URLs a client assertion may name (the endpoint and the issuer).
 */
export async function authenticateClient(ctx: IssuerContext, creds: ClientCredentials, audiences: readonly string[]): Promise<ClientRecord> {
  const basic = parseBasic(creds.authorization);
  const { client_id: bodyId, client_secret: bodySecret, client_assertion: assertion, client_assertion_type: assertionType } = creds.body;
  const used: ClientAuthMethod[] = [];
  if (basic) used.push('client_secret_basic');
  if (bodySecret !== undefined) used.push('client_secret_post');
  if (assertion !== undefined || assertionType !== undefined) used.push('private_key_jwt');
  if (used.length > 1) throw new InvalidRequest('use exactly one client authentication method');
  const method: ClientAuthMethod = used[0] ?? 'none';

  let clientId = basic?.id ?? bodyId;
  if (method === 'private_key_jwt') {
    if (assertionType !== CLIENT_ASSERTION_TYPE || !assertion) throw new InvalidRequest('client_assertion_type must be jwt-bearer with a client_assertion');
    let sub: unknown;
    try {
      sub = decodeJwt(assertion).sub;
    } catch {
      throw new InvalidClient('assertion_malformed');
    }
    if (typeof sub !== 'string') throw new InvalidClient('assertion_malformed');
    clientId = sub;
  }
  if (!clientId || clientId.length > 256) throw new InvalidClient('client_id_missing', method === 'client_secret_basic');
  if (bodyId !== undefined && bodyId !== clientId) throw new InvalidRequest('client_id does not match the authenticated client');

  const client = await clientById(ctx, clientId);
  if (!client) throw new InvalidClient('unknown_client', method === 'client_secret_basic');
  if (client.authMethod !== method) throw new InvalidClient(`auth_method_mismatch`, method === 'client_secret_basic');

  if (method === 'client_secret_basic' || method === 'client_secret_post') {
    const secret = basic?.secret ?? bodySecret ?? '';
    if (!client.secretHash || !safeEqual(sha256(secret), client.secretHash)) throw new InvalidClient('invalid_secret', method === 'client_secret_basic');
  } else if (method === 'private_key_jwt') {
    await verifyAssertion(ctx, client, assertion!, audiences);
  }
  return client;
}

async function verifyAssertion(ctx: IssuerContext, client: ClientRecord, assertion: string, audiences: readonly string[]): Promise<void> {
  if (!client.jwks?.keys.length) throw new InvalidClient('no_client_keys');
  let payload;
  try {
    ({ payload } = await jwtVerify(assertion, createLocalJWKSet(client.jwks as JSONWebKeySet), {
      issuer: client.clientId,
      subject: client.clientId,
      audience: [...audiences],
      algorithms: CLIENT_ASSERTION_ALGS,
      currentDate: new Date(ctx.clock.now()),
      clockTolerance: 30,
      requiredClaims: ['exp', 'jti'],
    }));
  } catch (err) {
    throw new InvalidClient(`assertion_${(err as { code?: string }).code ?? 'invalid'}`);
  }
  const exp = payload.exp!;
  if (exp - (payload.iat ?? nowSeconds(ctx.clock)) > MAX_ASSERTION_LIFETIME_S) throw new InvalidClient('assertion_lifetime');
  // A client assertion is single use (RFC 7523 §3, OIDC Core §9).
  if (!(await ctx.store.challenges.useOnce(`client_assertion:${client.clientId}:${payload.jti}`, (exp + 60) * 1000))) throw new InvalidClient('assertion_replayed');
}

function parseBasic(header: string | undefined): { id: string; secret: string } | undefined {
  if (!header || !/^basic /i.test(header)) return undefined;
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  if (i < 0) throw new InvalidClient('basic_malformed', true);
  try {
    // RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
    return { id: decodeForm(decoded.slice(0, i)), secret: decodeForm(decoded.slice(i + 1)) };
  } catch {
    throw new InvalidClient('basic_malformed', true);
  }
}

const decodeForm = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '));
