import { create, toBinary } from '@bufbuild/protobuf';
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, type JWK } from 'jose';
import { httpCheckRequest } from '../../src/extauthz/client.js';
import { CheckRequestSchema } from '../../src/gen/envoy/service/auth/v3/external_auth_pb.js';

/** A client's ES256 DPoP key, signing proofs with node:crypto directly (fast enough to pre-build large pools). */
export interface BenchDpopKey {
  jkt: string;
  /** Serialized Envoy CheckRequests, each with a fresh single-use proof for `method http://api.example.com<path>`. */
  checkPool(token: string, method: string, path: string, count: number): Uint8Array[];
}

export async function createBenchDpopKey(): Promise<BenchDpopKey> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' }) as JWK;
  const header = b64(JSON.stringify({ typ: 'dpop+jwt', alg: 'ES256', jwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y } }));
  const prefix = randomBytes(6).toString('base64url');
  let serial = 0;
  return {
    jkt: await calculateJwkThumbprint(jwk, 'sha256'),
    checkPool(token, method, path, count) {
      const ath = createHash('sha256').update(token).digest('base64url');
      const htu = `http://api.example.com${path}`;
      const iat = Math.floor(Date.now() / 1000);
      const pool: Uint8Array[] = [];
      for (let i = 0; i < count; i++) {
        const proof = signProof(privateKey, header, { jti: `${prefix}-${serial++}`, htm: method, htu, iat, ath });
        pool.push(toBinary(CheckRequestSchema, create(CheckRequestSchema, httpCheckRequest(method, path, { authorization: `DPoP ${token}`, dpop: proof }))));
      }
      return pool;
    },
  };
}

function signProof(key: KeyObject, header: string, claims: Record<string, unknown>): string {
  const input = `${header}.${b64(JSON.stringify(claims))}`;
  return `${input}.${sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
}

const b64 = (s: string) => Buffer.from(s).toString('base64url');
