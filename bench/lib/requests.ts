import { create, toBinary } from '@bufbuild/protobuf';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { httpCheckRequest } from '../../src/extauthz/client.js';
import { CheckRequestSchema } from '../../src/gen/envoy/service/auth/v3/external_auth_pb.js';

/** A serialized Envoy CheckRequest for `method path` with a bearer token. */
export function checkBytes(method: string, path: string, token?: string): Uint8Array {
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  return toBinary(CheckRequestSchema, create(CheckRequestSchema, httpCheckRequest(method, path, headers)));
}

export interface BenchIssuer {
  issuer: string;
  jwksUri: string;
  mint(alg: 'ES256' | 'RS256', count: number, claims: Record<string, unknown>): Promise<string[]>;
  /** Takes the JWKS endpoint down (connections refused) and brings it back on the same port (chaos). */
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

/** A loopback JWKS server with one ES256 and one RS256 key, for scenarios that verify every token. */
export async function startBenchIssuer(): Promise<BenchIssuer> {
  const keys = {
    ES256: await generateKeyPair('ES256', { extractable: true }),
    RS256: await generateKeyPair('RS256', { extractable: true, modulusLength: 2048 }),
  };
  const jwks = {
    keys: [
      { ...(await exportJWK(keys.ES256.publicKey)), kid: 'es', alg: 'ES256', use: 'sig' },
      { ...(await exportJWK(keys.RS256.publicKey)), kid: 'rs', alg: 'RS256', use: 'sig' },
    ],
  };
  const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=3600' }).end(JSON.stringify(jwks)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;
  const stop = () =>
    new Promise<void>((r) => {
      if (!server.listening) return r();
      server.closeAllConnections();
      server.close(() => r());
    });
  return {
    issuer: url,
    jwksUri: `${url}/jwks.json`,
    async mint(alg, count, claims) {
      const now = Math.floor(Date.now() / 1000);
      const out: string[] = [];
      for (let i = 0; i < count; i++) {
        out.push(
          await new SignJWT({ ...claims, jti: `t${i}` })
            .setProtectedHeader({ alg, kid: alg === 'ES256' ? 'es' : 'rs', typ: 'at+jwt' })
            .setIssuer(url)
            .setAudience('bench')
            .setIssuedAt(now)
            .setExpirationTime(now + 3600)
            .sign(keys[alg].privateKey),
        );
      }
      return out;
    },
    down: stop,
    up: () => new Promise<void>((r) => server.listen(port, '127.0.0.1', r)),
    close: stop,
  };
}
