import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, type JWK, type JWTPayload } from 'jose';

export type JwksMode = 'ok' | 'error500' | 'garbage' | 'hang' | 'redirect' | 'huge';

/** A real HTTP JWKS (and OIDC discovery) server on loopback, with switchable failure modes. */
export interface JwksServer {
  url: string;
  issuer: string;
  jwksUri: string;
  /** Requests served on the JWKS path. */
  jwksRequests: number;
  mode: JwksMode;
  cacheControl: string | undefined;
  keys: JWK[];
  /** Answers JWKS requests this much later (a slow identity provider). */
  delayMs: number;
  close(): Promise<void>;
}

export async function startJwksServer(): Promise<JwksServer> {
  // The handler reads the returned object, so tests switch modes and keys by assigning to it.
  const api: JwksServer = { url: '', issuer: '', jwksUri: '', jwksRequests: 0, mode: 'ok', cacheControl: 'max-age=300', keys: [], delayMs: 0, close: async () => {} };
  const server: Server = createServer((req, res) => {
    if (req.url === '/.well-known/openid-configuration') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ issuer: api.issuer, jwks_uri: api.jwksUri }));
      return;
    }
    if (req.url !== '/jwks.json') {
      res.writeHead(404).end();
      return;
    }
    api.jwksRequests++;
    if (api.delayMs > 0) setTimeout(answer, api.delayMs);
    else answer();
    function answer() {
      switch (api.mode) {
        case 'error500':
          res.writeHead(500).end('boom');
          return;
        case 'garbage':
          res.writeHead(200, { 'content-type': 'application/json' }).end('<html>not json');
          return;
        case 'redirect':
          res.writeHead(302, { location: 'http://127.0.0.1:1/jwks.json' }).end();
          return;
        case 'huge':
          res.writeHead(200, { 'content-type': 'application/json' }).end(`{"keys":[],"pad":"${'x'.repeat(2 * 1024 * 1024)}"}`);
          return;
        case 'hang':
          return; // never answers
        case 'ok': {
          const headers: Record<string, string> = { 'content-type': 'application/json' };
          if (api.cacheControl) headers['cache-control'] = api.cacheControl;
          res.writeHead(200, headers).end(JSON.stringify({ keys: api.keys }));
        }
      }
    }
  });
  server.keepAliveTimeout = 1;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  api.url = api.issuer = `http://127.0.0.1:${port}`;
  api.jwksUri = `${api.url}/jwks.json`;
  api.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return api;
}

export interface SigningKey {
  kid: string;
  alg: string;
  privateKey: Parameters<SignJWT['sign']>[0];
  publicJwk: JWK;
}

export async function makeKey(kid: string, alg: 'ES256' | 'RS256' | 'EdDSA' = 'ES256'): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, alg, privateKey, publicJwk };
}

export interface SignOptions {
  key: SigningKey;
  issuer: string;
  audience?: string | string[];
  /** Seconds since the epoch used for iat/exp; defaults to now. */
  now?: number;
  ttl?: number;
  header?: Record<string, unknown>;
}

export async function signToken(claims: JWTPayload, o: SignOptions): Promise<string> {
  const now = o.now ?? Math.floor(Date.now() / 1000);
  const jwt = new SignJWT({ ...claims })
    .setProtectedHeader({ alg: o.key.alg, kid: o.key.kid, typ: 'at+jwt', ...o.header })
    .setIssuer(o.issuer)
    .setIssuedAt(now)
    .setExpirationTime(now + (o.ttl ?? 600));
  if (o.audience !== undefined) jwt.setAudience(o.audience);
  return jwt.sign(o.key.privateKey);
}
